"""The compared methods of ``medsam reproduce``: which weights each method uses for a
dataset, and their segmenters, each model loaded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets.description import DatasetSpec
from ..segmentation.segmenter import Segmenter2D
from .config import FINETUNED, PUBLISHED, SAM, UNET, ProtocolConfig, category
from .layout import unet_folder, weights_file


class Methods:
    """The methods' segmenters, each model loaded once, on first use."""

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self._models: dict[str, Any] = {}

    def segmenter(self, source: str) -> Segmenter2D:
        """A fresh segmenter on the model of ``source`` (weights name or file), keeping slice
        embeddings where ``$MEDSAM_EMBEDDING_CACHE`` says (see
        :func:`~medsam.segmentation.embedding_store.configured_store`)."""
        from ..loading import load_model
        from ..segmentation.embedding_store import configured_store
        from ..segmentation.segmenters import make_segmenter

        if source not in self._models:
            self._models[source] = load_model(source, device=self.config.device, progress=False)
        return make_segmenter(self._models[source], precision="exact", store=configured_store())

    def sam_available(self) -> bool:
        """SAM's weights are cached (a registered name) or are a file at hand."""
        from ..weights import WEIGHTS, is_cached

        name = self.config.sam_weights
        return is_cached(name) if name in WEIGHTS else Path(name).is_file()

    def sources(self, spec: DatasetSpec) -> dict[str, str | Path | None]:
        """Method name -> its weights for ``spec`` (None: not trained, or absent)."""
        out = self.config.out
        return {PUBLISHED: self.config.published,
                FINETUNED: weights_file(out / "train" / "finetune"),
                UNET: weights_file(unet_folder(out, category(spec.modality))),
                SAM: self.config.sam_weights if self.sam_available() else None}

    def for_dataset(self, spec: DatasetSpec) -> dict[str, Segmenter2D]:
        """Method name -> a fresh segmenter for ``spec`` (methods without weights left out)."""
        return {name: self.segmenter(str(source)) for name, source in self.sources(spec).items()
                if source is not None}
