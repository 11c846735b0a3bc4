"""Prompts: which objects to segment, as boxes with a label id.

A prompts file is JSON, either a list of objects or ``{"prompts": [...]}`` (the same
prompts for every case), or ``{"cases": {"<case>": [...], ...}}`` (prompts per case,
for a folder of cases; a case is named by its file name with or without the
extension). Each object::

    {"box": [x0, y0, x1, y1], "slice": 40, "label": 1, "name": "liver"}
    {"box": [x0, y0, z0, x1, y1, z1], "label": 2}
    {"box": [-120.5, 30, -80, -60, 90, -20], "world": true, "frame": "RAS"}
    {"box": [x0, y0, x1, y1], "slice": 40, "z_range": [31, 52]}
    {"box": [x0, y0, x1, y1], "points": [[x, y], ...], "point_labels": [1, 0, ...]}
    {"box": [x0, y0, x1, y1], "slice": 40, "points": [[x, y, z], ...], "point_labels": [1, ...]}
    {"box": [...], "name": "kidney right", "category": "SCT^123037004^Anatomical Structure",
     "type": "SCT^64033007^Kidney"}

``box`` is required; ``label`` defaults to the entry's position + 1; ``slice`` (0-based)
is the key slice of a 2D box on a volume: the slice the user drew on, where the walk
through the volume starts; ``z_range`` (inclusive first and last slice, holding the key
slice) bounds the object. A 3D box ``x0, y0, z0, x1, y1, z1`` is a 2D box with the slice
range ``z0..z1``, its key slice ``slice`` (default: the middle slice). ``world`` marks a
box in physical mm (ITK/LPS, or RAS with ``"frame": "RAS"``). Pixel boxes follow
:mod:`.boxes`. ``points`` are clicks in pixels, with ``point_labels`` 1 = foreground,
0 = background: ``x, y`` on the key slice (2D images: the image), or ``x, y, z`` on any
slice of a volume (:mod:`.engine` says how each changes the object, in order);
they need a pixel box. ``category`` and ``type`` (together) code what the object is, as
``scheme^value^meaning``, for DICOM SEG and 3D Slicer exports (default: "Tissue").

A CSV prompts file holds prompts per case, one object per row, with the columns
``case, x0, y0, x1, y1`` and optionally ``label, name, z0, z1, slice, world, frame``
(``z0``/``z1`` make the row a 3D box, or with ``slice`` a key-slice box with its slice
range; empty cells take the defaults). Both forms are read by :func:`load_prompts`.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.geometry import Geometry
from ..io.npz import ChallengeBox, Interaction
from ..io.segments import Code
from ..prompt_geometry import (
    index_box,
    validate_box_2d,
    validate_click_slice,
    validate_point,
    validate_slice,
    validate_z_range,
    world_box_to_pixels,
)

MAX_LABEL = 65535
_KEYS = {"box", "label", "name", "slice", "z_range", "world", "frame", "points", "point_labels", "category",
         "type"}


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


def parse_box_text(text: str) -> tuple[float, ...]:
    """Parse ``"x0,y0,x1,y1"`` or ``"x0,y0,z0,x1,y1,z1"`` (commas and/or spaces)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"box {text!r}: not a list of numbers") from None
    if len(values) not in (4, 6):
        raise InputError(f"box {text!r}: expected 4 (x0,y0,x1,y1) or 6 (x0,y0,z0,x1,y1,z1) numbers, "
                         f"got {len(values)}")
    if not all(np.isfinite(values)):
        raise InputError(f"box {text!r}: values must be finite numbers (no nan or inf)")
    return values


def _entry(item: Any, index: int, path: Path) -> BoxPrompt:
    where = f"{path}: prompt {index + 1}"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object with a \"box\", got {type(item).__name__}")
    unknown = set(item) - _KEYS
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(_KEYS))}")
    box = item.get("box")
    if (not isinstance(box, list) or len(box) not in (4, 6)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise InputError(f"{where}: \"box\" must be a list of 4 or 6 numbers, got {box!r}")
    if not all(np.isfinite(box)):
        raise InputError(f"{where}: \"box\" values must be finite numbers, got {box!r}")
    label = item.get("label", index + 1)
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= MAX_LABEL:
        raise InputError(f"{where}: \"label\" must be a whole number in 1..{MAX_LABEL}, got {label!r}")
    name = item.get("name", "")
    if not isinstance(name, str):
        raise InputError(f"{where}: \"name\" must be text, got {name!r}")
    slc = item.get("slice")
    if slc is not None and (isinstance(slc, bool) or not isinstance(slc, int)):
        raise InputError(f"{where}: \"slice\" must be a whole number, got {slc!r}")
    world = item.get("world", False)
    if not isinstance(world, bool):
        raise InputError(f"{where}: \"world\" must be true or false, got {world!r}")
    frame = item.get("frame", "LPS")
    if not isinstance(frame, str) or frame.upper() not in ("LPS", "RAS"):
        raise InputError(f"{where}: \"frame\" must be \"LPS\" or \"RAS\", got {frame!r}")
    z_range = item.get("z_range")
    if z_range is not None:
        if (not isinstance(z_range, list) or len(z_range) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in z_range)):
            raise InputError(f"{where}: \"z_range\" must be [first, last] slice numbers, got {z_range!r}")
        if len(box) != 4 or slc is None:
            raise InputError(f"{where}: \"z_range\" goes with a 4-number box and its \"slice\"")
    points, point_labels = _points(item, where)
    if points and world:
        raise InputError(f"{where}: \"points\" are in pixels and cannot refine a world box")
    return BoxPrompt(tuple(box), label, name, slc, world, frame, points, point_labels,
                     None if z_range is None else (z_range[0], z_range[1]), _codes(item, where))


def _codes(item: dict, where: str) -> tuple[Code, Code] | None:
    """``category`` and ``type`` (both or neither) as codes."""
    given = [k for k in ("category", "type") if k in item]
    if not given:
        return None
    if len(given) == 1:
        raise InputError(f"{where}: give \"category\" and \"type\" together (only {given[0]!r} is here)")
    try:
        return Code.parse(str(item["category"])), Code.parse(str(item["type"]))
    except InputError as error:
        raise InputError(f"{where}: {error.message}") from None


def _points(item: dict, where: str) -> tuple[tuple[tuple[float, ...], ...], tuple[int, ...]]:
    points, labels = item.get("points", []), item.get("point_labels", [])
    if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) in (2, 3) and all(_is_number(v) for v in p) for p in points):
        raise InputError(f"{where}: \"points\" must be a list of [x, y] or [x, y, z] pixel "
                         f"coordinates, got {points!r}")
    if not all(np.isfinite(p).all() for p in points):
        raise InputError(f"{where}: \"points\" must be finite numbers, got {points!r}")
    if not isinstance(labels, list) or len(labels) != len(points) or not all(
            v in (0, 1) and not isinstance(v, bool) for v in labels):
        raise InputError(f"{where}: \"point_labels\" must give 1 (foreground) or 0 (background) for "
                         f"each of the {len(points)} point(s), got {labels!r}")
    return tuple(tuple(float(v) for v in p) for p in points), tuple(int(v) for v in labels)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def parse_prompts(data: Any, path: str | os.PathLike = "<prompts>") -> list[BoxPrompt]:
    """Prompts from already-decoded JSON (see the module docstring)."""
    path = Path(path)
    if isinstance(data, dict) and set(data) == {"prompts"}:
        data = data["prompts"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of prompts, {{\"prompts\": [...]}} or "
                         f"{{\"cases\": {{\"<case>\": [...]}}}}")
    if not data:
        raise InputError(f"{path}: no prompts in the file")
    prompts = [_entry(item, i, path) for i, item in enumerate(data)]
    check_unique_labels(prompts, str(path))
    return prompts


@dataclass(frozen=True)
class PromptsFile:
    """The prompts of a file: the same for every case (``shared``) or per case (``by_case``,
    keyed by case name, see :func:`medsam.segmentation.cases.case_name`)."""

    path: Path
    shared: tuple[BoxPrompt, ...] | None = None
    by_case: dict[str, tuple[BoxPrompt, ...]] = field(default_factory=dict)

    def for_case(self, name: str) -> list[BoxPrompt]:
        """The prompts of case ``name``; InputError when the file has none for it."""
        if self.shared is not None:
            return list(self.shared)
        if name not in self.by_case:
            raise InputError(f"{self.path}: no prompts for case {name!r}")
        return list(self.by_case[name])

    def unknown_cases(self, names: Sequence[str]) -> list[str]:
        """Cases of the file that are not among ``names`` (sorted)."""
        return sorted(set(self.by_case) - set(names))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: prompts file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read prompts file ({exc})") from None


def _case_key(text: str) -> str:
    from .cases import case_name

    return case_name(Path(text.strip()))


def _parse_json(path: Path) -> PromptsFile:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON "
                         f"(line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if isinstance(data, dict) and set(data) == {"cases"}:
        cases = data["cases"]
        if not isinstance(cases, dict) or not cases:
            raise InputError(f"{path}: \"cases\" must map case names to lists of prompts")
        by_case: dict[str, tuple[BoxPrompt, ...]] = {}
        for name, items in cases.items():
            key = _case_key(name)
            if key in by_case:
                raise InputError(f"{path}: case {key!r} is listed twice")
            by_case[key] = tuple(parse_prompts(items, f"{path}: case {name!r}"))
        return PromptsFile(path, by_case=by_case)
    return PromptsFile(path, shared=tuple(parse_prompts(data, path)))


_CSV_REQUIRED = ("case", "x0", "y0", "x1", "y1")
_CSV_COLUMNS = set(_CSV_REQUIRED) | {"label", "name", "z0", "z1", "slice", "world", "frame"}


def _csv_row(row: dict, line: int, path: Path) -> tuple[str, dict]:
    where = f"{path}: line {line}"

    def number(key: str, whole: bool = False) -> float | int | None:
        text = (row.get(key) or "").strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{where}: {key} {text!r} is not a number") from None
        if whole:
            if not value.is_integer():
                raise InputError(f"{where}: {key} {text!r} is not a whole number")
            return int(value)
        return value

    coords = [number(k) for k in ("x0", "y0", "x1", "y1")]
    if any(v is None for v in coords) or not (row.get("case") or "").strip():
        raise InputError(f"{where}: case, x0, y0, x1 and y1 are required")
    z0, z1 = number("z0"), number("z1")
    if (z0 is None) != (z1 is None):
        raise InputError(f"{where}: give both z0 and z1 for a 3D box, or neither")
    box = coords if z0 is None else [coords[0], coords[1], z0, coords[2], coords[3], z1]
    item: dict[str, Any] = {"box": box}
    if z0 is not None and z1 is not None and number("slice", True) is not None:  # key-slice box + range
        if not (float(z0).is_integer() and float(z1).is_integer()):
            raise InputError(f"{where}: z0 and z1 must be whole slice numbers")
        item = {"box": coords, "z_range": [int(z0), int(z1)]}
    for key, whole in (("label", True), ("slice", True)):
        value = number(key, whole)
        if value is not None:
            item[key] = value
    for key in ("name", "frame"):
        if (row.get(key) or "").strip():
            item[key] = row[key].strip()
    world = (row.get("world") or "").strip().lower()
    if world:
        if world not in ("true", "false", "1", "0", "yes", "no"):
            raise InputError(f"{where}: world {world!r} must be true or false")
        item["world"] = world in ("true", "1", "yes")
    return _case_key(row["case"]), item


def _parse_csv(path: Path) -> PromptsFile:
    reader = csv.DictReader(_read_text(path).splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in _CSV_REQUIRED if c not in columns]
    unknown = sorted(set(columns) - _CSV_COLUMNS)
    if missing or unknown:
        raise InputError(f"{path}: " + "; ".join(filter(None, [
            f"missing column(s) {', '.join(missing)}" if missing else "",
            f"unknown column(s) {', '.join(unknown)}" if unknown else ""]))
            + f" (columns: {', '.join(_CSV_REQUIRED)}, and optionally "
              f"{', '.join(sorted(_CSV_COLUMNS - set(_CSV_REQUIRED)))})")
    grouped: dict[str, list[dict]] = {}
    for line, row in enumerate(reader, start=2):
        if None in row:   # csv.DictReader files values beyond the header under None
            raise InputError(f"{path}: line {line} has {len(columns) + len(row[None])} values for "
                             f"{len(columns)} columns ({', '.join(columns)})")
        row = {(k or "").strip(): v for k, v in row.items()}
        case, item = _csv_row(row, line, path)
        grouped.setdefault(case, []).append(item)
    if not grouped:
        raise InputError(f"{path}: no prompts in the file")
    by_case = {}
    for case, items in grouped.items():
        for i, item in enumerate(items):  # default labels count per case
            item.setdefault("label", i + 1)
        by_case[case] = tuple(parse_prompts(items, f"{path}: case {case!r}"))
    return PromptsFile(path, by_case=by_case)


def load_prompts(path: str | os.PathLike) -> PromptsFile:
    """Read a JSON or CSV prompts file (see the module docstring).

    Raises:
        InputError: naming the file (and entry or line) and the problem.
    """
    path = Path(path)
    return _parse_csv(path) if path.suffix.lower() == ".csv" else _parse_json(path)


def read_prompts_file(path: str | os.PathLike) -> list[BoxPrompt]:
    """Read a prompts file holding one list of prompts (the same for any case).

    Raises:
        InputError: naming the file (and entry) on problems, or when the file gives
            prompts per case.
    """
    prompts = load_prompts(path)
    if prompts.shared is None:
        raise InputError(f"{path}: holds prompts per case ({', '.join(sorted(prompts.by_case))}); "
                         f"read it with load_prompts() and pick a case")
    return list(prompts.shared)


def prompts_from_interaction(interaction: Interaction) -> list[BoxPrompt]:
    """Prompts for an interactive challenge case: class ``i + 1`` gets the i-th box (its 2D
    box on ``z_mid`` with the slice range ``z_min..z_max``) and its clicks in order."""
    return [challenge_prompt(b, i + 1, clicks) for i, (b, clicks) in enumerate(zip(interaction.boxes,
                                                                                  interaction.clicks))]


def challenge_prompt(box: ChallengeBox, label: int, clicks: Sequence = ()) -> BoxPrompt:
    """The prompt of one challenge box: its 2D box on ``z_mid`` (inclusive pixel indices,
    :func:`~medsam.prompt_geometry.index_box`) with the slice range ``z_min..z_max``, and
    ``clicks`` ``((z, y, x), foreground)`` in order."""
    return BoxPrompt(index_box(box.x_min, box.y_min, box.x_max, box.y_max), label=label, slice=box.z_mid,
                     z_range=(box.z_min, box.z_max),
                     points=tuple((float(x), float(y), float(z)) for (z, y, x), _ in clicks),
                     point_labels=tuple(int(fg) for _, fg in clicks))


def prompts_from_npz_boxes(boxes: np.ndarray) -> list[BoxPrompt]:
    """Prompts for the boxes of a challenge npz case: box ``i`` gets label ``i + 1``."""
    return [BoxPrompt(tuple(b), label=i + 1) for i, b in enumerate(np.asarray(boxes, float))]
