"""3D segmentation from a box, slice by slice, with any 2D segmenter.

Two modes:

``"propagate"``
    segment the key slice with the given box, then walk up and down one slice at a
    time; each slice's box is the bounding box of the previous slice's mask grown by
    ``margin`` pixels. A direction stops where the mask vanishes (fewer than
    ``min_pixels``) or at the end of the z-range.
``"plain"``
    the paper's mode: the same box on every slice of the z-range.

The algorithm knows nothing about models: it drives a
:class:`~medsam.segmentation.segmenter.Segmenter2D` (or a callable
``(image2d, box) -> mask``), so it can be tested with a simple threshold segmenter.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from .boxes import mask_to_box
from .segmenter import Segmenter2D, as_segmenter, content_key, segment_object

MODES = ("propagate", "plain")
#: ``cache_key`` value that keys each slice by its contents
CONTENT = "medsam:slice-content"


def _segment_one(segmenter: Segmenter2D, volume: np.ndarray, z: int, box: np.ndarray, cache_key: Hashable | None,
                 min_pixels: int, points: Sequence = (), point_labels: Sequence = (),
                 label: int | None = None) -> np.ndarray | None:
    image = volume[z]
    if cache_key is CONTENT:
        key: Hashable | None = content_key(image)
    else:
        key = None if cache_key is None else (cache_key, z)
    segmenter.set_slice(image, key=key)
    mask = segment_object(segmenter, box, points, point_labels, label)
    return mask if mask.sum() >= min_pixels else None


def propagate_3d(volume: np.ndarray, segmenter: Any, box: Sequence[float], key_slice: int | None = None,
                 z_range: tuple[int, int] | None = None, margin: float = 5.0, mode: str = "propagate",
                 min_pixels: int = 1, cache_key: Hashable | None = None, progress: bool = False,
                 points: Sequence = (), point_labels: Sequence = (), label: int | None = None
                 ) -> np.ndarray:
    """Segment one object in a volume from a box.

    Args:
        volume: ``(z, y, x)`` (or ``(z, y, x, 3)``) array; slices ``volume[z]`` go to the segmenter.
        segmenter: a ``Segmenter2D`` or a callable ``(image2d, box) -> mask (y, x)``.
        box: 3D box ``(x0, y0, z0, x1, y1, z1)`` (pixel / slice indices, z inclusive; the key
            slice is its middle slice and its z-range bounds the result), or a 2D box
            ``(x0, y0, x1, y1)`` with ``key_slice``.
        key_slice: the slice to start from, for 2D boxes.
        z_range: inclusive ``(z0, z1)`` bounding the walk; default: the 3D box's range, or the
            whole volume for a 2D box.
        margin: pixels added on every side of the previous slice's mask box (propagate mode).
        mode: ``"propagate"`` or ``"plain"`` (same box on every slice of the z-range).
        min_pixels: a slice mask with fewer pixels counts as vanished (propagate mode).
        cache_key: passed to ``set_slice`` as ``(cache_key, z)`` so a caching segmenter can
            reuse per-slice work across objects; :data:`CONTENT`: each slice is keyed by
            its contents (:func:`~medsam.segmentation.segmenter.content_key`); None: no keys.
        progress: show a tqdm bar over slices.
        points, point_labels: clicks ``(x, y)`` refining the key slice (1 foreground, 0
            background); other slices are prompted by boxes only. ``label`` names the
            object in errors.
    Returns:
        bool mask ``(z, y, x)`` with the volume's spatial shape.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    segmenter = as_segmenter(segmenter)
    volume = np.asarray(volume)
    depth, h, w = volume.shape[:3]
    b = np.asarray(box, dtype=float).ravel()
    if b.size == 6:
        x0, y0, z0, x1, y1, z1 = b
        box2d = np.array([x0, y0, x1, y1])
        lo, hi = int(round(z0)), int(round(z1))
        key = (lo + hi) // 2 if key_slice is None else int(key_slice)
        if z_range is None:
            z_range = (lo, hi)
    elif b.size == 4:
        if key_slice is None:
            raise ValueError("a 2D box needs key_slice")
        box2d, key = b, int(key_slice)
    else:
        raise ValueError(f"box must have 4 or 6 values, got {b.size}")
    if z_range is None:
        if mode == "plain":
            raise ValueError("plain mode needs a z-range (a 3D box or z_range)")
        z_range = (0, depth - 1)
    lo, hi = int(z_range[0]), int(z_range[1])
    if not 0 <= lo <= key <= hi < depth:
        raise ValueError(f"need 0 <= z0 <= key slice <= z1 < {depth}, got {lo}, {key}, {hi}")

    out = np.zeros((depth, h, w), dtype=bool)
    bar = _progress(progress, hi - lo + 1)
    try:
        if mode == "plain":
            for z in range(lo, hi + 1):
                clicks = (points, point_labels) if z == key else ((), ())
                mask = _segment_one(segmenter, volume, z, box2d, cache_key, 1, *clicks, label)
                if mask is not None:
                    out[z] = mask
                bar.update(1)
            return out
        first = _segment_one(segmenter, volume, key, box2d, cache_key, min_pixels, points, point_labels, label)
        bar.update(1)
        if first is None:
            return out
        out[key] = first
        for step, end in ((1, hi), (-1, lo)):
            prev = first
            for z in range(key + step, end + step, step):
                next_box = mask_to_box(prev, margin)
                if next_box is None:  # an empty slice mask (min_pixels 0) ends the walk
                    break
                mask = _segment_one(segmenter, volume, z, next_box, cache_key, min_pixels)
                bar.update(1)
                if mask is None:
                    break
                out[z] = prev = mask
    finally:
        bar.close()
    return out


def _progress(enabled: bool, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="slices", unit="slice", disable=not enabled, leave=False)
