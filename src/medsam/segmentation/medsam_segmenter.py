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
from .embedding_store import EmbeddingStore, store_namespace
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
        cache_slices: how many slice embeddings to keep in memory (0 disables the cache).
        precision: ``"exact"``, ``"bf16"`` or ``"auto"`` (:mod:`medsam.precision`);
            :attr:`precision` holds the one in use.
        store: an :class:`~medsam.segmentation.embedding_store.EmbeddingStore` that keeps
            slice embeddings on disk across processes (None: memory only). Only slices
            named by their contents (:func:`~medsam.segmentation.segmenter.content_key`
            keys, tuples starting with the shape) go to disk.

    Attributes:
        last_scores: the model's predicted IoU of each mask of the last call that made
            masks (``(N,)``; one per box of :meth:`segment`), the quality signal of
            :mod:`medsam.segmentation.quality`.
    """

    def __init__(self, model: Any, transform: Any = None, device: Any = None, cache_slices: int = 64,
                 precision: str = "auto", store: EmbeddingStore | None = None):
        from ..predictor import MedSAMPredictor

        first = MedSAMPredictor(model, transform=transform, device=device, precision=precision)
        self.model = first.model
        self.transform = first.transform
        self.precision = first.precision
        self._predictor_cls = MedSAMPredictor
        self._spare: MedSAMPredictor | None = first
        self.cache = SliceCache(cache_slices)
        self.store = store
        self._namespace: str | None = None
        self._current = None
        self.last_scores: np.ndarray | None = None

    @property
    def encoder_calls(self) -> int:
        """How many image embeddings were computed (cache misses)."""
        return self.cache.misses

    def _encode(self, image: np.ndarray, key: Hashable | None = None) -> MedSAMPredictor:
        predictor, self._spare = self._spare, None
        if predictor is None:
            predictor = self._predictor_cls(self.model, transform=self.transform,
                                             precision=self.precision)
        on_disk = self.store is not None and _is_content_key(key)
        if on_disk:
            assert self.store is not None
            if self._namespace is None:
                self._namespace = store_namespace(self.model, self.transform, self.precision)
            if self.store.load(predictor, self._namespace, key):
                return predictor
        predictor.set_image(image)
        if on_disk:
            assert self.store is not None and self._namespace is not None
            self.store.save(predictor, self._namespace, key)
        return predictor

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make ``image`` ((H, W) or (H, W, 3), values 0..255) current; its embedding is reused
        when ``key`` was seen before."""
        self._current = self.cache.get_or_compute(key, lambda: self._encode(image, key))

    def segment(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` XYXY pixels -> masks ``(N, H, W)`` bool (one decoder batch)."""
        if self._current is None:
            raise ValueError("call set_slice() before segment()")
        masks, scores, _ = self._current.predict(boxes=np.asarray(boxes, dtype=float).reshape(-1, 4))
        self.last_scores = np.asarray(scores, dtype=float).reshape(len(masks), -1)[:, 0]
        return masks

    def segment_scored(self, box: np.ndarray, points: np.ndarray | None = None,
                       point_labels: np.ndarray | None = None, mask_input: np.ndarray | None = None
                       ) -> tuple[np.ndarray, float, np.ndarray]:
        """One object: box ``(4,)`` XYXY, optional clicks ``(K, 2)`` XY with labels ``(K,)``
        and a dense prompt (the low-res logits ``(256, 256)`` of a previous mask) ->
        (mask ``(H, W)`` bool, the model's predicted IoU, low-res logits ``(256, 256)``)."""
        if self._current is None:
            raise ValueError("call set_slice() before segment_scored()")
        has_points = points is not None and len(points) > 0
        masks, scores, logits = self._current.predict(
            boxes=np.asarray(box, dtype=float).reshape(1, 4),
            points=np.asarray(points, dtype=float).reshape(1, -1, 2) if has_points else None,
            point_labels=np.asarray(point_labels).reshape(1, -1) if has_points else None,
            mask_input=None if mask_input is None else np.asarray(mask_input, np.float32).reshape(1, 1, 256, 256))
        self.last_scores = np.asarray([float(scores[0])])
        return masks[0], float(scores[0]), logits[0, 0]

    @property
    def interactive(self) -> bool:
        """The model was trained for clicks and mask prompts (``model.info.interactive``)."""
        info = getattr(self.model, "info", None)
        return bool(info is not None and info.interactive)

    def segment_prompted(self, box: np.ndarray, points: np.ndarray | None = None,
                         point_labels: np.ndarray | None = None, prior: np.ndarray | None = None
                         ) -> np.ndarray:
        """An interactive model's mask ``(H, W)`` bool of one object: box ``(4,)``, clicks
        ``(K, 2)`` XY with labels ``(K,)``, and ``prior`` ``(H, W)`` bool, the mask it starts
        from (this slice's current mask, or a neighbouring slice's), given as SAM's dense
        prompt the way the model was trained (:func:`medsam.transforms.mask_prompt`)."""
        if self._current is None:
            raise ValueError("call set_slice() before segment_prompted()")
        dense = None
        if prior is not None and np.any(prior):
            from ..transforms import mask_prompt

            assert self._current.input_size is not None
            dense = mask_prompt(np.asarray(prior, bool), self._current.input_size, self.transform.image_size)
        mask, _, _ = self.segment_scored(box, points, point_labels, dense)
        return mask

    def segment_points(self, box: np.ndarray, points: np.ndarray, point_labels: np.ndarray) -> np.ndarray:
        """One box ``(4,)`` XYXY refined by clicks ``(K, 2)`` XY with labels ``(K,)`` (1 foreground,
        0 background) -> mask ``(H, W)`` bool. An interactive model takes the clicks one at a
        time, each with the mask before it, as it was trained."""
        if self._current is None:
            raise ValueError("call set_slice() before segment_points()")
        if self.interactive:
            mask = self.segment_prompted(box)
            for k in range(1, len(points) + 1):
                mask = self.segment_prompted(box, points[:k], point_labels[:k], mask)
            return mask
        masks, scores, _ = self._current.predict(boxes=np.asarray(box, dtype=float).reshape(1, 4),
                                                 points=np.asarray(points, dtype=float).reshape(1, -1, 2),
                                                 point_labels=np.asarray(point_labels).reshape(1, -1))
        self.last_scores = np.asarray(scores, dtype=float).reshape(-1)[:1]
        return masks[0]


def _is_content_key(key: Hashable | None) -> bool:
    return isinstance(key, tuple) and len(key) == 3 and isinstance(key[0], tuple)


def segment_image(image: np.ndarray, geometry: Geometry, prompts: Sequence[BoxPrompt], model: Any,
                  modality: str | None = None, window: str | None = None, level: float | None = None,
                  width: float | None = None, mode: str = "propagate", margin: float | None = None,
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
