"""The box-cropped U-Net (:class:`~medsam.modeling.unet.BoxUNet`) as a
:class:`~medsam.segmentation.segmenter.Segmenter2D` (the segmenter its registry entry
names; :func:`~medsam.segmentation.segmenter.make_segmenter` picks it).

A slice goes through the model's transform exactly as for LiteMedSAM (resize the
longest side to 256, scale to [0, 1], pad); boxes are mapped into that frame by the
transform, and the U-Net's low-resolution logits are post-processed by it, so a mask
from ``medsam segment --checkpoint unet.pth`` is made the way training scored it. The
prepared slice is kept per slice key (a small LRU cache), as MedSAM keeps embeddings.
"""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from ..intensity import to_three_channels
from .segmenter import SliceCache


class BoxUNetSegmenter:
    """Segment boxes on 2D slices with a :class:`~medsam.modeling.unet.BoxUNet`.

    Args:
        model: the U-Net (``medsam.load_model`` of a ``unet`` checkpoint).
        precision: accepted for the common segmenter signature; the U-Net always runs
            in float32 (``exact``).
        store: accepted for the common signature and unused: the U-Net has no image
            embedding to keep on disk.
        transform: preprocessing name or object (None: ``model.info.transform``).
        cache_slices: how many prepared slices to keep.
    """

    precision = "exact"

    def __init__(self, model: Any, precision: str = "auto", store: Any = None, transform: Any = None,
                 cache_slices: int = 8) -> None:
        from ..transforms import get_transform

        self.model = model.eval()
        name = transform or model.info.transform
        self.transform = get_transform(name) if isinstance(name, str) else name
        self.cache = SliceCache(cache_slices)
        self._current: Any = None

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make ``image`` ((H, W) or (H, W, 3), values 0..255) the current slice."""
        self._current = self.cache.get_or_compute(
            key, lambda: self.transform.prepare_image(to_three_channels(image)))

    def segment(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` XYXY pixels -> masks ``(N, H, W)`` bool (one batch)."""
        import torch

        if self._current is None:
            raise ValueError("call set_slice() before segment()")
        prepared = self._current
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        device = self.model.device
        scaled = self.transform.apply_boxes(boxes, prepared.original_size)
        images = torch.from_numpy(prepared.tensor)[None].to(device).expand(len(boxes), -1, -1, -1)
        with torch.no_grad():
            logits = self.model(images, torch.as_tensor(scaled, dtype=torch.float32, device=device))
        masks = self.transform.postprocess(logits, prepared.original_size, prepared.input_size)
        return masks[:, 0].cpu().numpy()

