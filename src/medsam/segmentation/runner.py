"""What segments one slice of one object: the slice's box and clicks -> its mask.

:class:`SliceRunner` drives any 2D segmenter (a
:class:`~medsam.segmentation.segmenter.Segmenter2D`, or a callable ``(image2d, box) -> mask``)
over the slices of one volume (a 2D image is a volume of one slice): it sets the slice (keyed
for the segmenter's embedding cache), gives the model the box and, for a model trained for
interaction, the slice's clicks and a prior mask, and makes the mask obey the clicks
(:func:`enforce_clicks`). It reports each slice to ``on_slice`` (progress) and keeps the
model's predicted IoU per slice. The 3D engine (:mod:`.engine`) decides which slices to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .segmenter import PointSegmenter2D, Segmenter2D, as_segmenter, content_key

#: ``cache_key`` value that keys each slice by its contents
CONTENT = "medsam:slice-content"


@dataclass(frozen=True)
class SliceClicks:
    """Clicks on one slice: ``points`` ``(K, 2)`` ``x, y`` pixels and ``labels`` ``(K,)``
    (1 foreground, 0 background)."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()

    @property
    def foreground(self) -> list[tuple[float, float]]:
        return [p for p, v in zip(self.points, self.labels) if v == 1]

    @property
    def background(self) -> list[tuple[float, float]]:
        return [p for p, v in zip(self.points, self.labels) if v == 0]

    def add(self, x: float, y: float, label: int) -> "SliceClicks":
        return SliceClicks(self.points + ((float(x), float(y)),), self.labels + (int(label),))


class Runner(Protocol):
    """What the walk drives: ``run(z, box, clicks) -> mask (H, W)`` over a volume of ``shape``."""

    @property
    def depth(self) -> int: ...

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def __call__(self, z: int, box: Sequence[float], clicks: SliceClicks | None = None,
                 prior: np.ndarray | None = None) -> np.ndarray: ...


class SliceRunner:
    """Segments single slices of one volume with one segmenter: sets the slice (keyed for
    the segmenter's cache), applies the box and the slice's clicks, and enforces them: a
    background click's part is removed, a foreground click's part is kept."""

    def __init__(self, volume: np.ndarray, segmenter: Any, cache_key: Hashable | None = CONTENT,
                 label: int | None = None, model_clicks: bool = False, edit_model_clicks: bool = True,
                 on_slice: Callable[[int], None] | None = None):
        self.volume = np.asarray(volume)
        #: called with the slice index before each slice is segmented (progress)
        self.on_slice = on_slice
        self.model_clicks = model_clicks
        self.edit_model_clicks = edit_model_clicks
        self.segmenter: Segmenter2D = as_segmenter(segmenter)
        self.cache_key = cache_key
        self.label = label
        self.calls = 0
        #: slice -> the model's predicted IoU of the mask it made there last (segmenters
        #: that give one: ``last_scores``)
        self.scores: dict[int, float] = {}
        #: the segmenter's model was trained for interaction: clicks and ``prior`` masks go
        #: to it as prompts, and no mask edits are made
        self.interactive = bool(getattr(self.segmenter, "interactive", False))

    @property
    def depth(self) -> int:
        return int(self.volume.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.volume.shape[0]), int(self.volume.shape[1]), int(self.volume.shape[2]))

    def _set(self, z: int) -> None:
        image = self.volume[z]
        if self.cache_key is CONTENT:
            key: Hashable | None = content_key(image)
        else:
            key = None if self.cache_key is None else (self.cache_key, z)
        self.segmenter.set_slice(image, key=key)

    def __call__(self, z: int, box: Sequence[float], clicks: SliceClicks | None = None,
                 prior: np.ndarray | None = None) -> np.ndarray:
        """Mask ``(H, W)`` bool of slice ``z`` from ``box`` ``(x0, y0, x1, y1)`` and its clicks;
        ``prior``: the mask the slice starts from (its current mask, or the neighbouring
        slice's), used by an interactive model only."""
        if self.on_slice is not None:
            self.on_slice(z)
        mask = self._segment(z, box, clicks, prior)
        scores = getattr(self.segmenter, "last_scores", None)
        if scores is not None and len(scores) == 1:
            self.scores[z] = float(scores[0])
        return mask

    def _segment(self, z: int, box: Sequence[float], clicks: SliceClicks | None,
                 prior: np.ndarray | None) -> np.ndarray:
        self._set(z)
        self.calls += 1
        clicks = clicks or SliceClicks()
        b = np.asarray(box, dtype=float)
        if clicks.points:
            b = _box_with_points(b, clicks.foreground, self.shape[1:])
        if self.interactive:
            points = np.asarray(clicks.points, dtype=float).reshape(-1, 2) if clicks.points else None
            labels = np.asarray(clicks.labels, dtype=int) if clicks.points else None
            prompted = self.segmenter.segment_prompted(b, points, labels, prior)  # type: ignore[attr-defined]
            mask = np.asarray(prompted).astype(bool)
            return enforce_clicks(mask, clicks) if self.edit_model_clicks else mask
        if self.model_clicks:
            mask = slice_mask(self.segmenter, b, clicks.points, clicks.labels, self.label)
        else:
            mask = slice_mask(self.segmenter, b)
        return enforce_clicks(mask, clicks)


def _box_with_points(box: np.ndarray, points: Sequence[tuple[float, float]], hw: Sequence[int],
                     pad: float = 3.0) -> np.ndarray:
    """``box`` grown to hold every point (with ``pad`` pixels), clipped to the image."""
    if not points:
        return box
    p = np.asarray(points, dtype=float)
    h, w = int(hw[0]), int(hw[1])
    x0, y0 = min(box[0], p[:, 0].min() - pad), min(box[1], p[:, 1].min() - pad)
    x1, y1 = max(box[2], p[:, 0].max() + pad), max(box[3], p[:, 1].max() + pad)
    return np.array([max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)])


def enforce_clicks(mask: np.ndarray, clicks: SliceClicks) -> np.ndarray:
    """``mask`` obeying its clicks, applied in order (a later click wins): where a background
    click lies inside the mask, the disc around it reaching the mask's border is removed
    (the click marks the middle of a wrong region); where a foreground click lies outside,
    the disc around it reaching the mask is added (1 px at least)."""
    if not clicks.points:
        return mask
    mask = np.asarray(mask, dtype=bool).copy()
    h, w = mask.shape
    yy, xx = np.ogrid[:h, :w]
    for (x, y), label in zip(clicks.points, clicks.labels):
        r, c = min(int(y), h - 1), min(int(x), w - 1)
        if label == 0 and mask[r, c]:
            radius = float(ndimage.distance_transform_edt(mask)[r, c])
            mask &= (yy - r) ** 2 + (xx - c) ** 2 >= radius ** 2
            mask[r, c] = False
        elif label == 1 and not mask[r, c]:
            radius = max(1.0, float(ndimage.distance_transform_edt(~mask)[r, c])) if mask.any() else 1.0
            mask |= (yy - r) ** 2 + (xx - c) ** 2 <= radius ** 2
    return mask


def slice_mask(segmenter: Segmenter2D, box: np.ndarray, points: Any = (), point_labels: Any = (),
                   label: int | None = None) -> np.ndarray:
    """One object's mask ``(H, W)`` bool on the current slice: the box alone, or the box with
    its clicks when there are any.

    Raises:
        InputError: there are clicks but the segmenter takes boxes only (``label`` names the object).
    """
    if len(points) == 0:
        return np.asarray(segmenter.segment(np.asarray(box, dtype=float).reshape(1, 4)))[0].astype(bool)
    if not isinstance(segmenter, PointSegmenter2D):
        what = f"label {label}" if label is not None else "a prompt"
        raise InputError(f"{what} has points, but the {type(segmenter).__name__} segmenter takes boxes only")
    return np.asarray(segmenter.segment_points(np.asarray(box, dtype=float).ravel(),
                                               np.asarray(points, dtype=float).reshape(-1, 2),
                                               np.asarray(point_labels, dtype=int).ravel())).astype(bool)
