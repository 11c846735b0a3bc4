"""MedSAM as a :class:`~medsam.segmentation.segmenter.Segmenter2D`, and the one-call API.

:class:`MedSAMSegmenter` wraps :class:`medsam.predictor.MedSAMPredictor`. Each slice's
image embedding (the costly encoder pass) is kept in a bounded :class:`SliceCache`, keyed
by the slice's contents (:func:`~medsam.segmentation.segmenter.content_key`; the cache
belongs to one model and transform), so several objects in one volume, and later calls
on the same volume with the same segmenter, encode every slice once. A cached entry is
a predictor sharing the model, holding that slice's embedding (4 MB).

:func:`segment_image` does intensity normalisation
(:func:`medsam.intensity.prepare_intensities`) + segmentation in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Sequence

import numpy as np

from ..intensity import prepare_intensities
from ..io.geometry import Geometry
from .pipeline import segment
from .prompts import BoxPrompt
from .segmenter import SliceCache

if TYPE_CHECKING:
    from ..predictor import MedSAMPredictor


class MedSAMSegmenter:
    """Segment boxes on 2D slices with a MedSAM / SAM / LiteMedSAM model.

    Args:
        model: a ``Sam`` (``medsam.build_model`` / ``medsam.load_model``).
        transform: preprocessing name or object for the predictor (None: from the variant).
        device: where to run (None: where the model is).
        cache_slices: how many slice embeddings to keep (0 disables the cache).
        precision: ``"exact"``, ``"bf16"`` or ``"auto"`` (:mod:`medsam.precision`);
            :attr:`precision` holds the one in use.
    """

    def __init__(self, model: Any, transform: Any = None, device: Any = None, cache_slices: int = 64,
                 precision: str = "auto"):
        from ..predictor import MedSAMPredictor

        first = MedSAMPredictor(model, transform=transform, device=device, precision=precision)
        self.model = first.model
        self.transform = first.transform
        self.precision = first.precision
        self._predictor_cls = MedSAMPredictor
        self._spare: MedSAMPredictor | None = first
        self.cache = SliceCache(cache_slices)
        self._current = None

    @property
    def encoder_calls(self) -> int:
        """How many image embeddings were computed (cache misses)."""
        return self.cache.misses

    def _encode(self, image: np.ndarray) -> MedSAMPredictor:
        predictor, self._spare = self._spare, None
        if predictor is None:
            predictor = self._predictor_cls(self.model, transform=self.transform,
                                             precision=self.precision)
        predictor.set_image(image)
        return predictor

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make ``image`` ((H, W) or (H, W, 3), values 0..255) current; its embedding is reused
        when ``key`` was seen before."""
        self._current = self.cache.get_or_compute(key, lambda: self._encode(image))

    def segment(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` XYXY pixels -> masks ``(N, H, W)`` bool (one decoder batch)."""
        if self._current is None:
            raise ValueError("call set_slice() before segment()")
        masks, _, _ = self._current.predict(boxes=np.asarray(boxes, dtype=float).reshape(-1, 4))
        return masks

    def segment_points(self, box: np.ndarray, points: np.ndarray, point_labels: np.ndarray) -> np.ndarray:
        """One box ``(4,)`` XYXY refined by clicks ``(K, 2)`` XY with labels ``(K,)`` (1 foreground,
        0 background) -> mask ``(H, W)`` bool."""
        if self._current is None:
            raise ValueError("call set_slice() before segment_points()")
        masks, _, _ = self._current.predict(boxes=np.asarray(box, dtype=float).reshape(1, 4),
                                            points=np.asarray(points, dtype=float).reshape(1, -1, 2),
                                            point_labels=np.asarray(point_labels).reshape(1, -1))
        return masks[0]


def segment_image(image: np.ndarray, geometry: Geometry, prompts: Sequence[BoxPrompt], model: Any,
                  modality: str | None = None, window: str | None = None, level: float | None = None,
                  width: float | None = None, mode: str = "propagate", margin: float = 5.0,
                  device: Any = None, segmenter: MedSAMSegmenter | None = None,
                  progress: bool = False, precision: str = "auto") -> np.ndarray:
    """Segment prompted objects in an image or volume with a MedSAM-family model.

    The Python equivalent of ``medsam segment``: intensity normalisation
    (:func:`medsam.intensity.prepare_intensities`), then :func:`medsam.segmentation.segment`.

    Args:
        image: ``(y, x)`` / ``(y, x, 3)`` or ``(z, y, x)`` as read by :func:`medsam.io.read`.
        geometry: its geometry (for world boxes and the dimension).
        prompts: boxes with label ids.
        model: a ``Sam``; ignored when ``segmenter`` is given (pass the same
            :class:`MedSAMSegmenter` to several calls to reuse slice embeddings).
        precision: ``"exact"``, ``"bf16"`` or ``"auto"`` (:mod:`medsam.precision`); ignored
            when ``segmenter`` is given.
    Returns:
        label map (uint8 / uint16) with the image's spatial shape.
    """
    prepared = prepare_intensities(image, geometry, modality, window, level, width)
    if segmenter is None:
        segmenter = MedSAMSegmenter(model, device=device, precision=precision)
    return segment(prepared, geometry, prompts, segmenter, mode=mode, margin=margin, progress=progress)
