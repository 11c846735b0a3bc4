"""Prompts: which objects to segment, as boxes with a label id.

A prompts file is JSON, either a list of objects or ``{"prompts": [...]}``; each object::

    {"box": [x0, y0, x1, y1], "slice": 40, "label": 1, "name": "liver"}
    {"box": [x0, y0, z0, x1, y1, z1], "label": 2}
    {"box": [-120.5, 30, -80, -60, 90, -20], "world": true, "frame": "RAS"}

``box`` is required; ``label`` defaults to the entry's position + 1; ``slice`` (0-based)
is the key slice of a 2D box on a volume; ``world`` marks a box in physical mm
(ITK/LPS, or RAS with ``"frame": "RAS"``). Pixel boxes follow :mod:`.boxes`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.geometry import Geometry
from .boxes import validate_box_2d, validate_slice, validate_z_range, world_box_to_pixels

MAX_LABEL = 65535
_KEYS = {"box", "label", "name", "slice", "world", "frame"}


@dataclass(frozen=True)
class BoxPrompt:
    """One object to segment, as given by the user.

    Attributes:
        box: 4 values ``(x0, y0, x1, y1)`` or 6 values ``(x0, y0, z0, x1, y1, z1)``.
        label: label id written into the label map (1..65535).
        name: optional name, shown in reports.
        slice: key slice (0-based) for a 2D box on a volume; None for 2D images / 3D boxes.
        world: the box is in world mm (``frame``) rather than pixels.
        frame: ``"LPS"`` (ITK/DICOM) or ``"RAS"`` (3D Slicer's display), for world boxes.
    """

    box: tuple[float, ...]
    label: int = 1
    name: str = ""
    slice: int | None = None
    world: bool = False
    frame: str = "LPS"

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
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


@dataclass(frozen=True)
class ResolvedPrompt:
    """A prompt checked against one image, in pixel coordinates.

    ``box2d`` is ``(x0, y0, x1, y1)`` float; for volumes ``key_slice`` is the slice the
    segmentation starts from and ``z_range`` the inclusive slice range it may cover
    (None: until the mask vanishes)."""

    label: int
    name: str
    box2d: tuple[float, float, float, float]
    key_slice: int | None = None
    z_range: tuple[int, int] | None = None


def resolve_prompt(prompt: BoxPrompt, shape: Sequence[int], geometry: Geometry) -> ResolvedPrompt:
    """Check ``prompt`` against an image of array ``shape`` and convert it to pixels.

    2D images take 4-value boxes. Volumes take a 6-value 3D box (key slice = its middle
    slice) or a 4-value box with ``slice``. World boxes are converted through ``geometry``.

    Raises:
        InputError: naming the prompt and what is wrong.
    """
    what = f"{prompt.describe} box"
    box = np.asarray(prompt.box, dtype=float)
    if geometry.ndim == 2:
        if box.size != 4:
            raise InputError(f"{what}: a 2D image takes 4 numbers x0,y0,x1,y1, got {box.size}")
        if prompt.slice is not None:
            raise InputError(f"{prompt.describe}: --slice/\"slice\" applies to volumes, not 2D images")
        if prompt.world:
            box = world_box_to_pixels(box, geometry, shape, prompt.frame, what)
        return ResolvedPrompt(prompt.label, prompt.name, tuple(validate_box_2d(box, shape, what)))
    depth = int(shape[0])
    if prompt.world:
        if box.size != 6:
            raise InputError(f"{what}: world boxes on volumes need 6 numbers x0,y0,z0,x1,y1,z1")
        box = world_box_to_pixels(box, geometry, shape, prompt.frame, what)
    if box.size == 6:
        if prompt.slice is not None:
            raise InputError(f"{prompt.describe}: give either a 3D box or a 2D box with a slice, not both")
        x0, y0, z0, x1, y1, z1 = box
        lo, hi = validate_z_range(z0, z1, depth, what)
        b2 = validate_box_2d([x0, y0, x1, y1], shape[1:], what)
        return ResolvedPrompt(prompt.label, prompt.name, tuple(b2), (lo + hi) // 2, (lo, hi))
    if prompt.slice is None:
        raise InputError(f"{what}: a 2D box on a volume needs a slice (--slice / \"slice\"), "
                         "or give a 3D box x0,y0,z0,x1,y1,z1")
    key = validate_slice(prompt.slice, depth, f"{prompt.describe} slice")
    return ResolvedPrompt(prompt.label, prompt.name, tuple(validate_box_2d(box, shape[1:], what)), key)


def parse_box_text(text: str) -> tuple[float, ...]:
    """Parse ``"x0,y0,x1,y1"`` or ``"x0,y0,z0,x1,y1,z1"`` (commas and/or spaces)."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"box {text!r}: not a list of numbers") from None
    if len(values) not in (4, 6) or not all(np.isfinite(values)):
        raise InputError(f"box {text!r}: expected 4 (x0,y0,x1,y1) or 6 (x0,y0,z0,x1,y1,z1) numbers")
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
    return BoxPrompt(tuple(box), label, name, slc, world, frame)


def parse_prompts(data: Any, path: str | os.PathLike = "<prompts>") -> list[BoxPrompt]:
    """Prompts from already-decoded JSON (see the module docstring)."""
    path = Path(path)
    if isinstance(data, dict) and set(data) == {"prompts"}:
        data = data["prompts"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of prompts or {{\"prompts\": [...]}}")
    if not data:
        raise InputError(f"{path}: no prompts in the file")
    return [_entry(item, i, path) for i, item in enumerate(data)]


def read_prompts_file(path: str | os.PathLike) -> list[BoxPrompt]:
    """Read a JSON prompts file. Raises InputError naming the file (and entry) on problems."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: prompts file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read prompts file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON "
                         f"(line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_prompts(data, path)


def prompts_from_npz_boxes(boxes: np.ndarray) -> list[BoxPrompt]:
    """Prompts for the boxes of a challenge npz case: box ``i`` gets label ``i + 1``."""
    return [BoxPrompt(tuple(b), label=i + 1) for i, b in enumerate(np.asarray(boxes, float))]
