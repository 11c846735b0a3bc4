"""The 2D segmenter interface the 3D algorithms drive, and a per-slice cache.

Anything that can segment boxes on a 2D image is a :class:`Segmenter2D`:

``set_slice(image, key=None)``
    make ``image`` (``(H, W)`` or ``(H, W, 3)``) the current slice. ``key`` (hashable;
    :func:`content_key` by default, from :func:`~medsam.segmentation.segment`) names it,
    so an implementation may reuse earlier work on the same slice (MedSAM: the image
    embedding, the costly part), within a call and across calls.
``segment(boxes) -> masks``
    boxes ``(N, 4)`` ``x0, y0, x1, y1`` pixels -> masks ``(N, H, W)`` bool.

A segmenter that also takes refinement clicks is a :class:`PointSegmenter2D`:
``segment_points(box, points, point_labels) -> mask`` for one object (box ``(4,)``,
points ``(K, 2)`` ``x, y`` pixels, labels ``(K,)`` 1 foreground / 0 background).
:func:`~.runner.slice_mask` calls whichever a prompt needs.

A plain function ``fn(image2d, box) -> mask (H, W)`` becomes a segmenter with
:class:`CallableSegmenter`. :class:`SliceCache` is a small LRU cache that segmenters use
to keep per-slice work (embeddings) keyed by slice.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Callable, Hashable, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Segmenter2D(Protocol):
    """A box-prompted 2D segmenter (see the module docstring)."""

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None: ...

    def segment(self, boxes: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class PointSegmenter2D(Segmenter2D, Protocol):
    """A :class:`Segmenter2D` that also refines a box with foreground/background clicks."""

    def segment_points(self, box: np.ndarray, points: np.ndarray, point_labels: np.ndarray) -> np.ndarray: ...


class CallableSegmenter:
    """Adapt ``fn(image2d, box (4,)) -> mask (H, W)`` to :class:`Segmenter2D`."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
        self.fn = fn
        self._image: np.ndarray | None = None

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        self._image = image

    def segment(self, boxes: np.ndarray) -> np.ndarray:
        if self._image is None:
            raise ValueError("call set_slice() before segment()")
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        h, w = self._image.shape[:2]
        out = np.zeros((len(boxes), h, w), dtype=bool)
        for i, box in enumerate(boxes):
            mask = np.asarray(self.fn(self._image, box))
            if mask.shape != (h, w):
                raise ValueError(f"segmenter returned a mask of shape {mask.shape}, expected {(h, w)}")
            out[i] = mask.astype(bool)
        return out


def as_segmenter(obj: Any) -> Segmenter2D:
    """Return ``obj`` if it is a :class:`Segmenter2D`, wrap it if it is a callable."""
    if isinstance(obj, Segmenter2D):
        return obj
    if callable(obj):
        return CallableSegmenter(obj)
    raise TypeError(f"expected a Segmenter2D or a callable (image2d, box) -> mask, got {type(obj).__name__}")


def content_key(image: np.ndarray) -> tuple:
    """A cache key naming a slice by its contents: (shape, dtype, BLAKE2b digest of the
    bytes). Equal slices get equal keys in any call, so cached work is reused safely."""
    image = np.ascontiguousarray(image)
    digest = hashlib.blake2b(image.data, digest_size=16).hexdigest()
    return (image.shape, image.dtype.str, digest)


class SliceCache:
    """Least-recently-used cache of per-slice results (e.g. image embeddings).

    ``get_or_compute(key, fn)`` returns the cached value for ``key`` or stores ``fn()``.
    ``hits`` / ``misses`` count lookups, so callers (and tests) can see the reuse.
    ``max_items=0`` disables caching.
    """

    def __init__(self, max_items: int = 64):
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.max_items = int(max_items)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get_or_compute(self, key: Hashable | None, compute: Callable[[], Any]) -> Any:
        if key is not None and key in self._items:
            self.hits += 1
            self._items.move_to_end(key)
            return self._items[key]
        self.misses += 1
        value = compute()
        if key is not None and self.max_items > 0:
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()
