"""Prompts: which objects to segment, as given and as checked against an image.

:class:`BoxPrompt` is an object's prompt as a user gives it (a box in pixels or world mm, 2D
or 3D, a key slice and slice range, clicks, a name and codes), from any parser
(:mod:`.prompt_files`: JSON and CSV prompts files, the command line's ``--box``, a
challenge npz; the web app's requests). :func:`resolve_prompt` checks it against one image
(every geometric rule is :mod:`medsam.prompt_geometry`'s) and gives the
:class:`ResolvedPrompt`, in pixels, that the 3D engine, the interactive session and the
benchmarks use. ``slice`` (0-based) is the key slice of a 2D box on a volume: the slice the
user drew on, where the walk through the volume starts; ``z_range`` (inclusive first and last
slice, holding the key slice) bounds the object. A 3D box ``x0, y0, z0, x1, y1, z1`` is a 2D
box with the slice range ``z0..z1``, its key slice ``slice`` (default: the middle slice).
Clicks are ``x, y`` on the key slice (2D images: the image), or ``x, y, z`` on any slice of a
volume (:mod:`.engine` says how each changes the object, in order); they need a pixel box.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.geometry import Geometry
from ..io.segments import Code
from ..prompt_geometry import (
    validate_box_2d,
    validate_click_slice,
    validate_point,
    validate_slice,
    validate_z_range,
    world_box_to_pixels,
)

MAX_LABEL = 65535
@dataclass(frozen=True)
class BoxPrompt:
    """One object to segment, as given by the user.

    Attributes:
        box: 4 values ``(x0, y0, x1, y1)`` or 6 values ``(x0, y0, z0, x1, y1, z1)``.
        label: label id written into the label map (1..65535).
        name: optional name, shown in reports.
        slice: key slice (0-based) for a 2D box on a volume, or of a 3D box (default: its
            middle slice); None for 2D images.
        z_range: inclusive ``(first, last)`` slice of a 2D box on a volume; None: not bounded.
        world: the box is in world mm (``frame``) rather than pixels.
        frame: ``"LPS"`` (ITK/DICOM) or ``"RAS"`` (3D Slicer's display), for world boxes.
        points: clicks in pixels, ``(x, y)`` on the key slice (2D: the image) or
            ``(x, y, z)`` on slice ``z`` of a volume, in the order given.
        point_labels: one per point, 1 = foreground, 0 = background.
        codes: (category, type) of the object for DICOM SEG / Slicer exports; None: generic.
    """

    box: tuple[float, ...]
    label: int = 1
    name: str = ""
    slice: int | None = None
    world: bool = False
    frame: str = "LPS"
    points: tuple[tuple[float, ...], ...] = ()
    point_labels: tuple[int, ...] = ()
    z_range: tuple[int, int] | None = None
    codes: tuple[Code, Code] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "points", tuple(tuple(float(v) for v in p) for p in self.points))
        if any(len(p) not in (2, 3) for p in self.points):
            raise ValueError("points must be (x, y) or (x, y, z)")
        if self.z_range is not None:
            z0, z1 = (int(v) for v in self.z_range)
            if len(self.box) != 4:
                raise ValueError("z_range goes with a 2D box on a key slice; a 3D box has its own")
            object.__setattr__(self, "z_range", (z0, z1))
        object.__setattr__(self, "point_labels", tuple(int(v) for v in self.point_labels))
        if len(self.points) != len(self.point_labels):
            raise ValueError(f"{len(self.points)} points but {len(self.point_labels)} point labels")
        if any(v not in (0, 1) for v in self.point_labels):
            raise ValueError(f"point labels must be 1 (foreground) or 0 (background), got {self.point_labels}")
        if self.points and self.world:
            raise ValueError("points are in pixels; they cannot refine a world box")
        if len(self.box) not in (4, 6):
            raise ValueError(f"box must have 4 or 6 values, got {self.box}")
        if not 1 <= int(self.label) <= MAX_LABEL:
            raise ValueError(f"label must be in 1..{MAX_LABEL}, got {self.label}")
        if self.frame.upper() not in ("LPS", "RAS"):
            raise ValueError(f"frame must be 'LPS' or 'RAS', got {self.frame!r}")
        object.__setattr__(self, "frame", self.frame.upper())

    @property
    def describe(self) -> str:
        return f"label {self.label}" + (f" ({self.name})" if self.name else "")

    def to_json(self) -> dict[str, Any]:
        """The prompt as a JSON object of a prompts file (:func:`parse_prompts` reads it back)."""
        item: dict[str, Any] = {"box": [_number(v) for v in self.box], "label": self.label}
        if self.name:
            item["name"] = self.name
        if self.slice is not None:
            item["slice"] = self.slice
        if self.z_range is not None:
            item["z_range"] = list(self.z_range)
        if self.world:
            item["world"], item["frame"] = True, self.frame
        if self.points:
            item["points"] = [[_number(v) for v in p] for p in self.points]
            item["point_labels"] = list(self.point_labels)
        if self.codes is not None:
            item["category"], item["type"] = str(self.codes[0]), str(self.codes[1])
        return item


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Click:
    """A click: ``x`` (column), ``y`` (row) pixel coordinates on slice ``z`` (0 on a 2D
    image), and ``foreground`` (True: the object is here; False: it is not)."""

    x: float
    y: float
    z: int = 0
    foreground: bool = True


@dataclass(frozen=True)
class ResolvedPrompt:
    """One object's prompt checked against one image, in pixel coordinates: the one form
    every path segments from (the command line, the interactive session, the web app and
    the benchmarks), built once by :func:`resolve_prompt`.

    ``box2d`` is ``(x0, y0, x1, y1)`` float; for volumes ``key_slice`` is the slice the
    segmentation starts from and ``z_range`` the inclusive slice range it may cover
    (None: while the object is there); on 2D images both are None. ``clicks`` are in the
    order given (on 2D images on slice 0); ``codes`` what the object is (category, type)."""

    label: int
    name: str
    box2d: tuple[float, float, float, float]
    key_slice: int | None = None
    z_range: tuple[int, int] | None = None
    clicks: tuple[Click, ...] = ()
    codes: tuple[Code, Code] | None = None

    def slices(self, depth: int) -> int:
        """How many slices of a ``depth``-slice volume the object may cover: its slice
        range, else the whole volume."""
        return (self.z_range[1] - self.z_range[0] + 1) if self.z_range is not None else int(depth)

    @property
    def start(self) -> int:
        """The slice the segmentation starts from: the key slice (0 on a 2D image)."""
        return self.key_slice or 0

    def same_box(self, other: "ResolvedPrompt") -> bool:
        """Whether ``other`` has this box on the same key slice with the same slice range."""
        return (self.box2d, self.key_slice, self.z_range) == (other.box2d, other.key_slice, other.z_range)

    def to_box_prompt(self) -> BoxPrompt:
        """The prompt as a :class:`BoxPrompt` in pixels (a prompts file's entry; resolving it
        again gives this prompt)."""
        volume = self.key_slice is not None
        return BoxPrompt(self.box2d, label=self.label, name=self.name, slice=self.key_slice, z_range=self.z_range,
                         points=tuple((c.x, c.y, float(c.z)) if volume else (c.x, c.y) for c in self.clicks),
                         point_labels=tuple(int(c.foreground) for c in self.clicks), codes=self.codes)


def resolve_prompt(prompt: BoxPrompt, shape: Sequence[int], geometry: Geometry) -> ResolvedPrompt:
    """Check ``prompt`` against an image of array ``shape`` and convert it to pixels.

    2D images take 4-value boxes. Volumes take a 6-value 3D box (key slice = ``slice``,
    else its middle slice) or a 4-value box with ``slice`` (and optionally ``z_range``).
    World boxes are converted through ``geometry``. Points must lie in the image
    (``0 <= x <= W``, ``0 <= y <= H``; ``z`` a slice of the volume, within the slice range).

    Raises:
        InputError: naming the prompt and what is wrong.
    """
    resolved = replace(_resolve_box(prompt, shape, geometry), codes=prompt.codes)
    if not prompt.points:
        return resolved
    hw = shape[1:3] if geometry.ndim == 3 else shape[:2]
    clicks: list[Click] = []
    for p, label in zip(prompt.points, prompt.point_labels):
        where = f"{prompt.describe} point ({', '.join(f'{v:g}' for v in p)})"
        validate_point(p[0], p[1], hw, where)
        if geometry.ndim == 2:
            if len(p) != 2:
                raise InputError(f"{where}: a 2D image takes points x, y")
            clicks.append(Click(p[0], p[1], 0, bool(label)))
            continue
        z = float(p[2]) if len(p) == 3 else float(resolved.start)
        clicks.append(Click(p[0], p[1], validate_click_slice(z, int(shape[0]), resolved.z_range, where),
                            bool(label)))
    return replace(resolved, clicks=tuple(clicks))


def resolve_prompts(prompts: Sequence[BoxPrompt], shape: Sequence[int], geometry: Geometry,
                    mode: str = "propagate") -> list[ResolvedPrompt]:
    """Check every prompt against the image (see :func:`resolve_prompt`) and the 3D mode:
    the plain mode (the same box on every slice of a range) needs 3D boxes.

    Raises:
        InputError: naming the prompt and the problem.
    """
    if not prompts:
        raise InputError("no prompts given")
    check_unique_labels(prompts)
    resolved = [resolve_prompt(p, shape, geometry) for p in prompts]
    if mode == "plain" and geometry.ndim == 3:
        for p in resolved:
            if p.z_range is None:
                raise InputError(f"label {p.label}: the plain 3D mode uses the same box on every "
                                 f"slice of a range, so it needs a 3D box x0,y0,z0,x1,y1,z1, not a "
                                 f"2D box on one slice")
    return resolved


def _resolve_box(prompt: BoxPrompt, shape: Sequence[int], geometry: Geometry) -> ResolvedPrompt:
    what = f"{prompt.describe} box"
    box = np.asarray(prompt.box, dtype=float)
    if prompt.world and not geometry.spacing_known:
        raise InputError(f"{what}: given in world millimetres, but the image has no physical "
                         f"geometry (no pixel size, as in most PNG and JPEG files); give the box "
                         f"in pixels")
    if geometry.ndim == 2:
        if box.size != 4:
            raise InputError(f"{what}: a 2D image takes 4 numbers x0,y0,x1,y1, got {box.size}")
        if prompt.slice is not None:
            raise InputError(f"{prompt.describe}: a slice applies to volumes, not 2D images")
        if prompt.world:
            box = world_box_to_pixels(box, geometry, shape, prompt.frame, what)
        return ResolvedPrompt(prompt.label, prompt.name, tuple(validate_box_2d(box, shape, what)))
    depth = int(shape[0])
    if prompt.world:
        if box.size != 6:
            raise InputError(f"{what}: world boxes on volumes need 6 numbers x0,y0,z0,x1,y1,z1")
        box = world_box_to_pixels(box, geometry, shape, prompt.frame, what)
    if box.size == 6:
        x0, y0, z0, x1, y1, z1 = box
        lo, hi = validate_z_range(z0, z1, depth, what)
        b2 = validate_box_2d([x0, y0, x1, y1], shape[1:], what)
        key = (lo + hi) // 2 if prompt.slice is None else validate_slice(prompt.slice, depth,
                                                                           f"{prompt.describe} slice")
        _check_key_in_range(prompt, key, (lo, hi))
        return ResolvedPrompt(prompt.label, prompt.name, tuple(b2), key, (lo, hi))
    if prompt.slice is None:
        raise InputError(f"{what}: a 2D box on a volume needs a slice number, "
                         "or give a 3D box x0,y0,z0,x1,y1,z1")
    key = validate_slice(prompt.slice, depth, f"{prompt.describe} slice")
    z_range = None
    if prompt.z_range is not None:
        z_range = validate_z_range(prompt.z_range[0], prompt.z_range[1], depth, f"{prompt.describe} slice range")
        _check_key_in_range(prompt, key, z_range)
    return ResolvedPrompt(prompt.label, prompt.name, tuple(validate_box_2d(box, shape[1:], what)), key, z_range)


def _check_key_in_range(prompt: BoxPrompt, key: int, z_range: tuple[int, int]) -> None:
    if not z_range[0] <= key <= z_range[1]:
        raise InputError(f"{prompt.describe}: the slice range {z_range[0]}..{z_range[1]} does not "
                         f"contain its key slice {key}")


def check_unique_labels(prompts: Sequence[BoxPrompt], where: str = "") -> None:
    """InputError when two prompts of one image share a label: one label is one object, and
    two boxes would otherwise merge into it without a word. ``where`` prefixes the message
    (the file and case)."""
    seen: dict[int, int] = {}
    for i, p in enumerate(prompts):
        if p.label in seen:
            raise InputError(f"{where + ': ' if where else ''}prompts {seen[p.label] + 1} and {i + 1} "
                             f"both have label {p.label}; each object needs its own label")
        seen[p.label] = i


