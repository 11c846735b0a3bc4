"""The box-cropped U-Net (:class:`~medsam.modeling.unet.BoxUNet`) as a
:class:`~medsam.segmentation.segmenter.Segmenter2D`, and :func:`make_segmenter`, which
gives the right segmenter for any loaded model.

A slice goes through the model's transform exactly as for LiteMedSAM (resize the
longest side to 256, scale to [0, 1], pad); boxes are mapped into that frame by the
transform, and the U-Net's low-resolution logits are post-processed by it, so a mask
from ``medsam segment --checkpoint unet.pth`` is made the way training scored it. The
prepared slice is kept per slice key (a small LRU cache), as MedSAM keeps embeddings.
"""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np
import torch

from ..intensity import to_three_channels
from .segmenter import Segmenter2D, SliceCache


class BoxUNetSegmenter:
    """Segment boxes on 2D slices with a :class:`~medsam.modeling.unet.BoxUNet`.

    Args:
        model: the U-Net (``medsam.load_model`` of a ``unet`` checkpoint).
        transform: preprocessing name or object (None: the model's, else LiteMedSAM's).
        cache_slices: how many prepared slices to keep.
    """

    precision = "exact"

    def __init__(self, model: Any, transform: Any = None, cache_slices: int = 8) -> None:
        from ..transforms import get_transform, transform_for_variant

        self.model = model.eval()
        name = transform or model.preprocessing or transform_for_variant(model.variant)
        self.transform = get_transform(name) if isinstance(name, str) else name
        self.cache = SliceCache(cache_slices)
        self._current: Any = None

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make ``image`` ((H, W) or (H, W, 3), values 0..255) the current slice."""
        self._current = self.cache.get_or_compute(
            key, lambda: self.transform.prepare_image(to_three_channels(image)))

    @torch.no_grad()
    def segment(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` XYXY pixels -> masks ``(N, H, W)`` bool (one batch)."""
        if self._current is None:
            raise ValueError("call set_slice() before segment()")
        prepared = self._current
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        device = self.model.device
        scaled = self.transform.apply_boxes(boxes, prepared.original_size)
        images = torch.from_numpy(prepared.tensor)[None].to(device).expand(len(boxes), -1, -1, -1)
        logits = self.model(images, torch.as_tensor(scaled, dtype=torch.float32, device=device))
        masks = self.transform.postprocess(logits, prepared.original_size, prepared.input_size)
        return masks[:, 0].cpu().numpy()


def make_segmenter(model: Any, precision: str = "auto", store: Any = None) -> Segmenter2D:
    """The segmenter for a loaded model: :class:`BoxUNetSegmenter` for a U-Net, else
    :class:`~medsam.segmentation.MedSAMSegmenter` at ``precision`` (the U-Net always
    runs in float32), keeping slice embeddings in ``store`` (an
    :class:`~medsam.segmentation.embedding_store.EmbeddingStore`) when given."""
    from ..modeling.unet import BoxUNet
    from .medsam_segmenter import MedSAMSegmenter

    if isinstance(model, BoxUNet):
        return BoxUNetSegmenter(model)
    return MedSAMSegmenter(model, precision=precision, store=store)
