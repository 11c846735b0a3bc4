"""The 3D engine: one object segmented from its prompt, slice by slice, with any 2D segmenter.

Every path goes through here: :func:`~.pipeline.segment` (the command line, ``segment_image``,
a challenge npz), the interactive session (the web app, the benchmarks) and
:func:`propagate_3d`. A 2D image is a volume of one slice. :func:`object_mask` segments an
object from its :class:`~.prompts.ResolvedPrompt` in one call; :class:`VolumeObject` holds an
object's mask between clicks, for the session. Each slice is segmented by a
:class:`~.runner.SliceRunner`, whose ``on_slice`` reports progress.

Two modes:

``"propagate"``
    segment the key slice (the slice the user drew on) with the given box, then walk up
    and down one slice at a time (:func:`walk`). Each slice's box is the bounding box of the
    previous slice's mask grown by ``margin`` pixels, and the slice's mask keeps only the
    parts that touch the previous slice's mask. A direction stops at the end of the slice
    range, or where the object is no longer there (:class:`WalkConfig`): the mask vanishes,
    its area jumps, or it overlaps the previous slice's mask too little.
``"plain"``
    the paper's mode: the same box on every slice of the slice range (each slice with its
    own clicks).

An object's mask is a fixed function of its prompt, replayed in order, so a fresh process
given the same box and clicks (the CVPR 2025 challenge runs each step as a new process)
gives the same mask:

1. **The box** (:meth:`VolumeObject.segment_box`): a 2D box on the key slice, optionally
   with the object's first and last slice, propagated as above.
2. **A click** ``(x, y, z)`` (:meth:`VolumeObject.add_click`), foreground or background:

   * the clicked slice is segmented again with its box and all its clicks. Its box is the
     user's box on the key slice; elsewhere the current mask's box on that slice (or, for
     a slice the mask does not reach, the nearest slice's), grown to hold the foreground
     clicks. A background click's connected part is removed, a foreground click's kept;
   * the change is carried to the neighbouring slices by the same walk, each segmented from
     the new mask next to it, until a slice no longer changes (Dice >= ``unchanged_dice``);
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
trained for interaction (``model.info.interactive``, e.g. the ``lite_interactive`` weights)
gets the clicks of the slice as point prompts and the slice's current mask (or, in the
walk, the neighbouring slice's) as its dense prompt (:class:`~.runner.SliceRunner`).
The engine knows nothing about models, so it can be tested with a threshold segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from ..prompt_geometry import mask_to_box
from .prompts import Click, ResolvedPrompt
from .runner import CONTENT, Runner, SliceClicks, SliceRunner

MODES = ("propagate", "plain")
#: a background click that leaves less than this fraction of its slice's mask says the
#: object does not reach that slice
VANISHED = 0.5


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


def object_mask(volume: np.ndarray, segmenter: Any, prompt: ResolvedPrompt, config: WalkConfig = DEFAULT_WALK,
                   mode: str = "propagate", cache_key: Hashable | None = CONTENT,
                   on_slice: Callable[[int], None] | None = None) -> tuple[np.ndarray, dict[int, float]]:
    """One object of ``volume`` from its prompt: the box, then its clicks in order (see the
    module docstring); what a fresh process computes for this prompt.

    Args:
        volume: ``(z, y, x)`` or ``(z, y, x, 3)`` intensities as the segmenter takes them; a
            2D image as a volume of one slice, ``image[None]``.
        segmenter: a ``Segmenter2D`` or a callable ``(image2d, box) -> mask (y, x)``.
        prompt: the object's prompt, checked against the image (:func:`~.prompts.resolve_prompt`).
        config: the walk's settings.
        mode: ``"propagate"``, or ``"plain"`` (the box on every slice of the prompt's slice
            range, which it then needs).
        cache_key: passed to the segmenter's ``set_slice`` as ``(cache_key, z)`` so a caching
            segmenter reuses per-slice work across objects; :data:`~.runner.CONTENT`: each
            slice is keyed by its contents; None: no keys.
        on_slice: called with each slice's index before it is segmented (progress).
    Returns:
        the mask ``(z, y, x)`` bool, and slice -> the model's predicted IoU of the mask it
        made there last (empty for segmenters that give none).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    run = SliceRunner(volume, segmenter, cache_key, prompt.label, config.model_clicks, config.edit_model_clicks,
                      on_slice=on_slice)
    obj = VolumeObject(prompt.box2d, prompt.start, prompt.z_range)
    if mode == "plain":
        if prompt.z_range is None:
            raise ValueError("plain mode needs a slice range")
        obj.clicks = list(prompt.clicks)
        clicks = obj.slice_clicks()
        obj.mask = np.zeros(run.shape, dtype=bool)
        for z in range(prompt.z_range[0], prompt.z_range[1] + 1):
            obj.mask[z] = run(z, prompt.box2d, clicks.get(z))
        return obj.mask, run.scores
    mask = obj.segment_box(run, config)
    for click in prompt.clicks:
        mask = obj.add_click(run, click, config)
    return mask, run.scores


def propagate_3d(volume: np.ndarray, segmenter: Any, box: Sequence[float], key_slice: int | None = None,
                 z_range: tuple[int, int] | None = None, margin: float | None = None, mode: str = "propagate",
                 min_pixels: int | None = None, cache_key: Hashable | None = None, progress: bool = False,
                 points: Sequence = (), point_labels: Sequence = (), label: int | None = None,
                 config: WalkConfig = DEFAULT_WALK, on_slice: Callable[[int], None] | None = None) -> np.ndarray:
    """Segment one object in a volume from a box given as plain numbers (a thin form of
    :func:`object_mask`, which it calls).

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
        cache_key: as :func:`object_mask`'s (default here: no keys).
        progress: show a progress bar over slices (:func:`medsam.progress.progress_bar`).
        points, point_labels: clicks ``(x, y)`` on the key slice (1 foreground, 0
            background), applied after the box. ``label`` names the object in errors.
        config: the walk's settings (:class:`WalkConfig`).
        on_slice: called with each slice's index before it is segmented.
    Returns:
        bool mask ``(z, y, x)`` with the volume's spatial shape.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    volume = np.asarray(volume)
    box2d, key, lo, hi = _resolve_range(box, key_slice, z_range, volume.shape[0], mode)
    has_range = z_range is not None or np.asarray(box).size == 6
    x0, y0, x1, y1 = (float(v) for v in box2d)
    prompt = ResolvedPrompt(1 if label is None else int(label), "", (x0, y0, x1, y1), key,
                            (lo, hi) if has_range else None,
                            tuple(Click(float(x), float(y), key, bool(v)) for (x, y), v in zip(points, point_labels)))
    bar = _progress(progress, hi - lo + 1)

    def tick(z: int) -> None:
        bar.update(1)
        if on_slice is not None:
            on_slice(z)

    try:
        return object_mask(volume, segmenter, prompt, walk_config(margin, min_pixels, config), mode,
                              cache_key, tick)[0]
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
