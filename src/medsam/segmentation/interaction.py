"""One object in a volume, segmented from a box and corrected by clicks anywhere in 3D.

:class:`VolumeObject` is an object's prompts and mask. Its result is a fixed function of
its prompts, replayed in order, so a fresh process given the same box and clicks (the
CVPR 2025 challenge runs each step as a new process) gives the same mask:

1. **The box** (:meth:`VolumeObject.segment_box`): a 2D box on the key slice, optionally
   with the object's first and last slice. The key slice is segmented first and the
   result is propagated up and down (:func:`~medsam.segmentation.propagation.walk`) until
   the object is no longer there, never leaving the slice range.
2. **A click** ``(x, y, z)`` (:meth:`VolumeObject.add_click`), foreground or background:

   * the clicked slice is segmented again with its box and all its clicks. Its box is the
     user's box on the key slice; elsewhere the current mask's box on that slice (or, for
     a slice the mask does not reach, the nearest slice's), grown to hold the foreground
     clicks. A background click's connected part is removed, a foreground click's kept;
   * the change is carried to the neighbouring slices, each segmented from the new mask
     next to it, until a slice no longer changes (Dice >= ``unchanged_dice``);
   * a click corrects in its own direction only (``monotone_clicks``): after a foreground
     click no slice, the clicked one included, loses pixels it had; after a background
     click none gains any;
   * slices the user clicked on are always segmented with their clicks;
   * a background click that leaves its slice empty, or with less than half of its mask
     (:data:`VANISHED`), ends the object there: that slice and the ones beyond it (away
     from the key slice) are cleared;
   * a foreground click on a slice outside the mask extends the object to it: the slices
     between are filled, and the walk goes on beyond it while the object is there.

With LiteMedSAM the previous mask is not given to the model as SAM's dense prompt:
measured on ``../shared/data`` it did not help (see ``docs/interactive.md``). A model
trained for interaction (``model.interactive``, e.g. the ``lite_interactive`` weights)
gets the clicks of the slice as point prompts and the slice's current mask (or, in the
walk, the neighbouring slice's) as its dense prompt, and no mask edits are made
(:class:`~medsam.segmentation.propagation.SliceRunner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from ..prompt_geometry import mask_to_box
from .propagation import (
    DEFAULT_WALK,
    MODES,
    Runner,
    SliceClicks,
    SliceRunner,
    WalkConfig,
    bounded,
    monotone,
    propagate_from_key,
    walk,
    walk_config,
)

#: a background click that leaves less than this fraction of its slice's mask says the
#: object does not reach that slice
VANISHED = 0.5


@dataclass(frozen=True)
class Click:
    """A click in a volume: ``x`` (column), ``y`` (row), ``z`` (slice) pixel indices, and
    ``foreground`` (True: the object is here; False: it is not)."""

    x: float
    y: float
    z: int
    foreground: bool = True


@dataclass
class VolumeObject:
    """One object's prompts and mask (see the module docstring).

    Attributes:
        box: ``(x0, y0, x1, y1)`` pixels on ``key_slice``.
        key_slice: the slice the box was drawn on, where the walk starts.
        z_range: inclusive ``(first, last)`` slice the object may cover; None: any.
        clicks: in the order given.
        mask: ``(z, y, x)`` bool, once segmented.
    """

    box: tuple[float, float, float, float]
    key_slice: int
    z_range: tuple[int, int] | None = None
    clicks: list[Click] = field(default_factory=list)
    mask: np.ndarray | None = None

    def bounds(self, depth: int) -> tuple[int, int]:
        return self.z_range if self.z_range is not None else (0, depth - 1)

    def slice_clicks(self) -> dict[int, SliceClicks]:
        out: dict[int, SliceClicks] = {}
        for c in self.clicks:
            out[c.z] = out.get(c.z, SliceClicks()).add(c.x, c.y, int(c.foreground))
        return out

    def segment_box(self, run: Runner, config: WalkConfig = DEFAULT_WALK) -> np.ndarray:
        """Segment from the box alone (any clicks are forgotten). Returns the mask."""
        self.clicks = []
        config = bounded(config, self.z_range is not None)
        self.mask = propagate_from_key(run, self.box, self.key_slice, self.bounds(run.depth), config)
        return self.mask

    def add_click(self, run: Runner, click: Click, config: WalkConfig = DEFAULT_WALK) -> np.ndarray:
        """Apply one click to the current mask (see the module docstring). Returns the mask."""
        if self.mask is None:
            self.segment_box(run, config)
        assert self.mask is not None
        self.clicks.append(click)
        config = bounded(config, self.z_range is not None)
        out = self.mask.copy()
        z = click.z
        lo, hi = self.bounds(run.depth)
        clicks = self.slice_clicks()
        box = self._slice_box(out, z, config.margin)
        before = int(out[z].sum())
        new = run(z, box, clicks[z], self._slice_prior(out, z))
        out[z] = monotone(new, out[z], click.foreground) if config.monotone_clicks and before else new
        if not out[z].any() or (not click.foreground and out[z].sum() < VANISHED * before):
            # the object does not reach this slice: clear it and what lies beyond
            if z > self.key_slice:
                out[z:] = False
            elif z < self.key_slice:
                out[:z + 1] = False
            self.mask = out
            return out
        for step, end in ((1, hi), (-1, lo)):
            if (step > 0 and z < hi) or (step < 0 and z > lo):
                # beyond the old mask no slice is unchanged, so the walk goes on while the
                # object is there
                walk(run, out, z, step, end, config, clicks, carry=True,
                     anchors={self.key_slice: self.box}, grow=click.foreground)
        self.mask = out
        return out

    def _slice_prior(self, mask: np.ndarray, z: int) -> np.ndarray | None:
        """The mask slice ``z`` starts from at a click: its own, else the nearest slice's."""
        if mask[z].any():
            return mask[z]
        filled = np.nonzero(mask.any(axis=(1, 2)))[0]
        if filled.size == 0:
            return None
        return mask[int(filled[np.argmin(np.abs(filled - z))])]

    def _slice_box(self, mask: np.ndarray, z: int, margin: float) -> tuple[float, ...]:
        if z == self.key_slice:
            return self.box
        if mask[z].any():
            box = mask_to_box(mask[z], margin)
            assert box is not None
            return tuple(box)
        filled = np.nonzero(mask.any(axis=(1, 2)))[0]
        if filled.size == 0:
            return self.box
        nearest = int(filled[np.argmin(np.abs(filled - z))])
        box = mask_to_box(mask[nearest], margin)
        assert box is not None
        return tuple(box)


def replay(run: Runner, obj: VolumeObject, clicks: list[Click],
           config: WalkConfig = DEFAULT_WALK) -> np.ndarray:
    """The mask of ``obj``'s box followed by ``clicks`` in order (what a fresh process computes)."""
    obj.segment_box(run, config)
    for click in clicks:
        obj.add_click(run, click, config)
    assert obj.mask is not None
    return obj.mask


def prompt_clicks(prompt: Any) -> list[Click]:
    """The clicks of a resolved prompt, in order (2-value points lie on its key slice)."""
    out = []
    for p, label in zip(prompt.points, prompt.point_labels):
        z = int(p[2]) if len(p) == 3 else int(prompt.key_slice or 0)
        out.append(Click(float(p[0]), float(p[1]), z, bool(label)))
    return out


def propagate_3d(volume: np.ndarray, segmenter: Any, box: Sequence[float], key_slice: int | None = None,
                 z_range: tuple[int, int] | None = None, margin: float | None = None, mode: str = "propagate",
                 min_pixels: int | None = None, cache_key: Hashable | None = None, progress: bool = False,
                 points: Sequence = (), point_labels: Sequence = (), label: int | None = None,
                 config: WalkConfig = DEFAULT_WALK, on_slice: Callable[[int], None] | None = None) -> np.ndarray:
    """Segment one object in a volume from a box.

    Args:
        volume: ``(z, y, x)`` (or ``(z, y, x, 3)``) array; slices ``volume[z]`` go to the segmenter.
        segmenter: a ``Segmenter2D`` or a callable ``(image2d, box) -> mask (y, x)``.
        box: 3D box ``(x0, y0, z0, x1, y1, z1)`` (pixel / slice indices, z inclusive; its
            z-range bounds the result; the key slice is ``key_slice``, else its middle
            slice), or a 2D box ``(x0, y0, x1, y1)`` with ``key_slice``.
        key_slice: the slice to start from (where the user drew the box).
        z_range: inclusive ``(z0, z1)`` bounding the result; default: the 3D box's range, or
            the whole volume for a 2D box.
        margin, min_pixels: override ``config``'s (pixels around the previous slice's mask
            box; a slice mask with fewer pixels counts as vanished).
        mode: ``"propagate"`` or ``"plain"`` (same box on every slice of the z-range).
        cache_key: passed to ``set_slice`` as ``(cache_key, z)`` so a caching segmenter can
            reuse per-slice work across objects; :data:`CONTENT`: each slice is keyed by
            its contents (:func:`~medsam.segmentation.segmenter.content_key`); None: no keys.
        progress: show a progress bar over slices (:func:`medsam.progress.progress_bar`).
        points, point_labels: clicks ``(x, y)`` on the key slice (1 foreground, 0
            background), applied after the box (:meth:`VolumeObject.add_click`). ``label``
            names the object in errors.
        config: the walk's settings (:class:`WalkConfig`).
        on_slice: called with each slice's index before it is segmented.
    Returns:
        bool mask ``(z, y, x)`` with the volume's spatial shape.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    config = walk_config(margin, min_pixels, config)
    volume = np.asarray(volume)
    depth = volume.shape[0]
    has_range = z_range is not None or np.asarray(box).size == 6
    box2d, key, lo, hi = _resolve_range(box, key_slice, z_range, depth, mode)
    bar = _progress(progress, hi - lo + 1)

    def tick(z: int) -> None:
        bar.update(1)
        if on_slice is not None:
            on_slice(z)

    run = SliceRunner(volume, segmenter, cache_key, label, config.model_clicks, config.edit_model_clicks,
                      on_slice=tick)
    clicks = [Click(float(x), float(y), key, bool(v)) for (x, y), v in zip(points, point_labels)]
    try:
        if mode == "plain":
            out = np.zeros(volume.shape[:3], dtype=bool)
            key_clicks = SliceClicks(tuple((c.x, c.y) for c in clicks), tuple(int(c.foreground) for c in clicks))
            for z in range(lo, hi + 1):
                out[z] = run(z, tuple(box2d), key_clicks if z == key else None)
            return out
        x0, y0, x1, y1 = (float(v) for v in box2d)
        return replay(run, VolumeObject((x0, y0, x1, y1), key, (lo, hi) if has_range else None), clicks, config)
    finally:
        bar.close()


def _resolve_range(box: Sequence[float], key_slice: int | None, z_range: tuple[int, int] | None,
                   depth: int, mode: str) -> tuple[np.ndarray, int, int, int]:
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
    return box2d, key, lo, hi


def _progress(enabled: bool, total: int) -> Any:
    from ..progress import progress_bar

    return progress_bar(total=total, desc="slices", unit="slice", enabled=enabled, leave=False)
