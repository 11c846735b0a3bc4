"""Which segmenter segments with which kind of model: :data:`SEGMENTERS`, and
:func:`make_segmenter`.

The mapping is a plain dict from a model kind's name (a key of
:data:`medsam.modeling.registry.MODEL_REGISTRY`) to a class, so the import is visible to
the layer check and to mypy; a test checks that every registered kind has its segmenter.
(The names are written out: importing :mod:`medsam.modeling` would import torch, and
nothing here may before a model is loaded.)
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .medsam_segmenter import MedSAMSegmenter
from .segmenter import Segmenter2D
from .unet_segmenter import BoxUNetSegmenter

#: model kind -> the segmenter class that segments with it
SEGMENTERS: dict[str, type[MedSAMSegmenter] | type[BoxUNetSegmenter]] = {
    "vit_b": MedSAMSegmenter,
    "vit_l": MedSAMSegmenter,
    "vit_h": MedSAMSegmenter,
    "lite": MedSAMSegmenter,
    "unet": BoxUNetSegmenter,
}


def make_segmenter(model: Any, precision: str = "auto", store: Any = None) -> Segmenter2D:
    """The segmenter for a loaded model (:data:`SEGMENTERS`, by ``model.info.variant``) at
    ``precision``, keeping slice embeddings in ``store`` (an
    :class:`~medsam.segmentation.embedding_store.EmbeddingStore`) where it has any."""
    cls = SEGMENTERS.get(model.info.variant)
    if cls is None:
        raise InputError(f"no segmenter for model variant {model.info.variant!r}")
    return cls(model, precision=precision, store=store)
