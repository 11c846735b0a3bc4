r"""Prompts files and the other parsers of prompts: JSON, CSV, the command line's box text,
and the CVPR 2025 challenge's npz boxes and clicks, each building
:class:`~.prompts.BoxPrompt`\ s.

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
:mod:`medsam.prompt_geometry`. ``points`` are clicks in pixels, with ``point_labels`` 1 = foreground,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.npz import ChallengeBox, Interaction
from ..io.segments import Code
from ..prompt_geometry import index_box
from .prompts import MAX_LABEL, BoxPrompt, check_unique_labels

_KEYS = {"box", "label", "name", "slice", "z_range", "world", "frame", "points", "point_labels", "category",
         "type"}


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
