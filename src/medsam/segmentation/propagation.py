"""3D segmentation from a box, slice by slice, with any 2D segmenter.

Two modes:

``"propagate"``
    segment the key slice (the slice the user drew on) with the given box, then walk up
    and down one slice at a time. Each slice's box is the bounding box of the previous
    slice's mask grown by ``margin`` pixels, and the slice's mask keeps only the parts
    that touch the previous slice's mask. A direction stops at the end of the slice range,
    or where the object is no longer there (:class:`WalkConfig`): the mask vanishes, its
    area jumps, or it overlaps the previous slice's mask too little.
``"plain"``
    the paper's mode: the same box on every slice of the z-range.

The walk is also what carries a click's change to the neighbouring slices
(:mod:`.interaction`, which also holds :func:`~.interaction.propagate_3d`). The algorithm
knows nothing about models: it drives a
:class:`~medsam.segmentation.segmenter.Segmenter2D` (or a callable ``(image2d, box) -> mask``),
so it can be tested with a simple threshold segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence

import numpy as np
from scipy import ndimage

from ..prompt_geometry import mask_to_box
from .segmenter import Segmenter2D, as_segmenter, content_key, segment_object

MODES = ("propagate", "plain")
#: ``cache_key`` value that keys each slice by its contents
CONTENT = "medsam:slice-content"


@dataclass(frozen=True)
class WalkConfig:
    """When the slice-to-slice walk goes on, and when the object is no longer there.

    Attributes:
        margin: pixels added on every side of the previous slice's mask box.
        min_pixels: a slice mask with fewer pixels counts as vanished.
        max_growth: the walk stops where a slice's area exceeds this many times the
            previous slice's (a spill into a neighbour); 0 turns the check off.
        min_overlap: the walk stops where the slice mask covers less than this fraction
            of the previous slice's mask (intersection / previous area); 0: off.
        min_overlap_open: the same, for an object without a slice range (nothing else
            says where it ends, so the walk asks for more).
        connected: keep only the slice mask's parts that touch the previous slice's mask.
        model_clicks: give clicks to the model as SAM's point prompts (else only the box
            moves to hold them, and :func:`enforce_clicks` edits the mask).
        unchanged_dice: when carrying a change, the walk stops at a slice whose new mask
            matches its old one at least this well (Dice).
        edit_model_clicks: with a model trained for interaction (which takes the clicks as
            prompts), still edit its mask where it disagrees with a click
            (:func:`enforce_clicks`), so that a click is never ignored.
        neighbour_prompt: with a model trained for interaction, give each slice of the walk
            its neighbour's mask as the dense prompt (else the walk uses boxes alone, and
            only a clicked slice gets its own mask with its clicks).
        monotone_clicks: a click corrects in its own direction only: after a foreground
            click no slice loses pixels it had (the new mask is joined with the old), after
            a background click no slice gains any (the new mask is cut to the old), so a
            click cannot undo the correct parts of other slices (it did on a RECIST lesion:
            a foreground click on an end slice shrank the two slices next to it).
    """

    margin: float = 3.0
    min_pixels: int = 1
    max_growth: float = 2.0
    min_overlap: float = 0.2
    min_overlap_open: float = 0.5
    connected: bool = True
    unchanged_dice: float = 0.97
    model_clicks: bool = False
    edit_model_clicks: bool = True
    neighbour_prompt: bool = True
    monotone_clicks: bool = True


#: the propagation of a user's box (``medsam segment``, the web app, the interactive session)
DEFAULT_WALK = WalkConfig()


def bounded(config: WalkConfig, has_range: bool) -> WalkConfig:
    """``config`` for an object with (or without) a slice range (see ``min_overlap_open``)."""
    if has_range:
        return config
    return replace(config, min_overlap=max(config.min_overlap, config.min_overlap_open))


def walk_config(margin: float | None = None, min_pixels: int | None = None,
                base: WalkConfig = DEFAULT_WALK) -> WalkConfig:
    """``base`` with ``margin`` / ``min_pixels`` replaced where given."""
    if margin is not None:
        base = replace(base, margin=float(margin))
    if min_pixels is not None:
        base = replace(base, min_pixels=int(min_pixels))
    return base


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
            mask = segment_object(self.segmenter, b, clicks.points, clicks.labels, self.label)
        else:
            mask = segment_object(self.segmenter, b)
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


def touching(mask: np.ndarray, previous: np.ndarray, clicks: SliceClicks | None = None) -> np.ndarray:
    """The parts of ``mask`` that overlap ``previous`` (or hold a foreground click)."""
    if not mask.any():
        return mask
    parts, count = ndimage.label(mask)
    if count <= 1 and (previous & mask).any():
        return mask
    keep = set(np.unique(parts[previous & mask]).tolist()) - {0}
    if clicks is not None:
        h, w = mask.shape
        keep |= {int(parts[min(int(y), h - 1), min(int(x), w - 1)]) for x, y in clicks.foreground} - {0}
    return np.isin(parts, sorted(keep)) if keep else np.zeros_like(mask)


def object_present(mask: np.ndarray, previous: np.ndarray, config: WalkConfig) -> bool:
    """Whether ``mask`` continues the object of the neighbouring slice's ``previous``
    (see :class:`WalkConfig`)."""
    area, prev_area = int(mask.sum()), int(previous.sum())
    if area < max(1, config.min_pixels):
        return False
    if config.max_growth and prev_area and area > config.max_growth * prev_area + 4 * config.margin ** 2:
        return False
    if config.min_overlap and prev_area and (mask & previous).sum() < config.min_overlap * prev_area:
        return False
    return True


def walk(run: Any, out: np.ndarray, start: int, step: int, end: int, config: WalkConfig,
         clicks: Mapping[int, SliceClicks] | None = None, carry: bool = False,
         anchors: Mapping[int, Sequence[float]] | None = None, grow: bool | None = None) -> int:
    """Walk with ``run`` (a :class:`SliceRunner`) from slice ``start`` (whose mask in ``out``
    is the seed) towards ``end`` (inclusive) one ``step`` (+1 / -1) at a time, writing each
    slice's mask into ``out``.

    Without ``carry`` (a new object) every slice is segmented until the object is no longer
    there; that slice and the rest of the way to ``end`` are then cleared. With ``carry``
    (a change made at ``start``) the walk also stops at the first slice whose new mask
    matches its old one (``config.unchanged_dice``), and where a new mask does not continue
    the object, the old masks from there on are kept (past the old mask's end, the walk
    extends the object as a new one would).
    Slices with clicks are segmented with them, and a foreground click keeps the walk going.
    ``anchors`` maps slices to the box they are always segmented with (the key slice and
    the user's box), instead of the box of the mask next to them. ``grow`` (a carried
    click's direction, with ``config.monotone_clicks``): True joins each new mask with the
    slice's old one, False cuts it to the old one (:func:`monotone`).

    Returns:
        the last slice written with a non-empty mask.
    """
    clicks = clicks or {}
    anchors = anchors or {}
    prev = out[start]
    last = start
    for z in range(start + step, end + step, step):
        box = anchors[z] if z in anchors else mask_to_box(prev, config.margin)
        if box is None:
            break
        here = clicks.get(z)
        mask = run(z, box, here, prev if config.neighbour_prompt else None)
        if config.connected:
            mask = touching(mask, prev, here)
        if carry and grow is not None and config.monotone_clicks:
            mask = monotone(mask, out[z], grow)
        forced = here is not None and bool(here.foreground)
        if not forced and not object_present(mask, prev, config):
            if carry and out[z].any():  # a carried change that does not fit: keep the old mask
                break
            if step > 0:
                out[z:end + 1] = False
            else:
                out[end:z + 1] = False
            break
        old = out[z].copy()
        out[z] = mask
        last = z
        if carry and _dice(mask, old) >= config.unchanged_dice:
            break
        prev = mask
    return last


def monotone(new: np.ndarray, old: np.ndarray, grow: bool) -> np.ndarray:
    """``new`` kept to a click's direction: joined with ``old`` (``grow``: a foreground
    click), else cut to it; where ``old`` is empty (a slice the object did not reach) a
    foreground click's ``new`` stands as it is."""
    if not old.any():
        return new if grow else old
    return (new | old) if grow else (new & old)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def propagate_from_key(run: Any, box: Sequence[float], key: int, z_range: tuple[int, int],
                       config: WalkConfig = DEFAULT_WALK, clicks: SliceClicks | None = None) -> np.ndarray:
    """A new object: segment slice ``key`` from ``box`` (with ``clicks``), then walk up and
    down within ``z_range`` (inclusive) while the object is there. Returns ``(z, y, x)`` bool."""
    out = np.zeros(run.shape, dtype=bool)
    first = run(key, box, clicks)
    if first.sum() >= max(1, config.min_pixels):
        out[key] = first
        for step, end in ((1, z_range[1]), (-1, z_range[0])):
            walk(run, out, key, step, end, config)
    return out
