"""The dataset description read by ``medsam prepare``: which images and masks to
use, their modality, the labels to keep and how to normalise intensities.

A description is a JSON or YAML file (YAML needs the ``train`` extra)::

    {
      "root": "../data",                  # optional: folder the dataset paths are relative
                                          # to (itself relative to this file)
      "seed": 0,                          # split seed (default 0)
      "split": [0.8, 0.1, 0.1],           # train / tune / validation fractions, by case
      "datasets": [
        {
          "name": "kvasir",               # unique; [A-Za-z0-9_.-]
          "modality": "endoscopy",        # see medsam.intensity (ct, mr, us, xray, ...)
          "images": "kvasir/images/*.jpg",          # glob, relative to this file
          "labels": "kvasir/masks/{stem}.jpg",      # template: {stem} = image name
                                                    # without extension, {case} = the
                                                    # case id, {class} = a class name
                                                    # (one binary mask file per class; a
                                                    # missing file: class absent); omit
                                                    # for npz files that hold `gts`
          "case_pattern": null,           # optional regex: its first group, searched in
                                          # {stem}, is the case id (default: {stem}); a
                                          # pattern holding "/" is searched in
                                          # "{folder}/{stem}" (cases named by their folder)
          "cases": null,                  # optional: only these case ids (a held-out list)
          "split_group": null,            # optional: datasets with the same group draw
                                          # one split for their case ids together (one
                                          # patient's CT and MR stay in one split)
          "classes": {"1": "polyp"},      # label id -> name; omit to keep every id
          "label_threshold": 127,         # optional: mask = (mask > 127) -> id 1
          "intensity": {"window": "abdomen"},   # CT: window preset or level/width;
                                                # "none": already in [0, 255]
          "axis": 0,                      # 3D: slice along this array axis (z = 0)
          "tile_size": null,              # 2D: cut larger images into tiles
          "tile_overlap": 0,
          "external": false,              # true: validation only
          "min_pixels": 100,              # objects smaller than this in a slice are dropped
          "min_voxels": 1000,             # 3D components smaller than this are dropped
          "prompt": "box",                # evaluation: how a user's box is drawn from the
                                          # reference: "box" (2D: per object; 3D: a 3D box)
                                          # or "key_slice" (3D: a 2D box on the slice where
                                          # the object is largest, as for RECIST lesions)
          "raters": {"A": "kvasir/rater_a/{stem}.png",   # optional: other human raters'
                     "B": "kvasir/rater_b/{stem}.png"}   # masks (templates as 'labels'),
                                          # for the model-against-raters comparison
        }
      ]
    }

Relative paths are resolved against the description file's folder (or ``root``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, first_line, install_hint

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
DATASET_KEYS = {"name", "modality", "images", "labels", "classes", "label_threshold",
                "intensity", "axis", "tile_size", "tile_overlap", "external", "min_pixels",
                "min_voxels", "prompt", "case_pattern", "raters", "split_group", "cases"}
TOP_KEYS = {"root", "seed", "split", "datasets"}
PROMPT_STYLES = ("box", "key_slice")


@dataclass(frozen=True)
class Intensity:
    """How raw intensities become uint8: ``mode`` is ``"modality"`` (the modality's
    rule from :mod:`medsam.intensity`, CT with ``window`` or ``level``/``width``) or
    ``"none"`` (values already in [0, 255], rounded)."""

    mode: str = "modality"
    window: str | None = None
    level: float | None = None
    width: float | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a description (see the module docstring for the fields)."""

    name: str
    modality: str
    images: str
    labels: str | None
    root: Path
    classes: tuple[tuple[int, str], ...] | None = None
    label_threshold: float | None = None
    intensity: Intensity = Intensity()
    axis: int = 0
    tile_size: int | None = None
    tile_overlap: int = 0
    external: bool = False
    min_pixels: int = 100
    min_voxels: int = 1000
    prompt: str = "box"
    case_pattern: str | None = None
    raters: tuple[tuple[str, str], ...] | None = None
    split_group: str | None = None
    cases: tuple[str, ...] | None = None

    def case_id(self, stem: str) -> str:
        """The case id of an image called ``stem`` (see ``case_pattern`` and
        :func:`case_id`)."""
        return case_id(stem, self.case_pattern, f"dataset {self.name!r}")

    @property
    def per_class_labels(self) -> bool:
        """``labels`` names one mask file per class (its template holds ``{class}``)."""
        return self.labels is not None and "{class}" in self.labels

    def class_name(self, label: int) -> str:
        if self.classes is None:
            return f"label_{label}"
        return dict(self.classes)[label]


def case_id(name: str, pattern: str | re.Pattern | None, where: str) -> str:
    """The case id in ``name`` (a case name: file name without its format extension).

    The one case-pattern rule, for dataset descriptions and for folders of masks: with no
    ``pattern``, ``name`` itself; else the first group of the pattern's first match in
    ``name`` (the whole match when the pattern has no group).

    Raises:
        InputError: the pattern does not match ``name`` (a file the pattern does not
            name is an error, never skipped); the message starts with ``where``.
    """
    if pattern is None:
        return name
    found = re.search(pattern, name)
    if found is None:
        text = pattern if isinstance(pattern, str) else pattern.pattern
        raise InputError(f"{where}: case_pattern {text!r} does not match {name!r}",
                         option="case_pattern")
    return found.group(1) if found.groups() else found.group(0)


@dataclass(frozen=True)
class Description:
    datasets: tuple[DatasetSpec, ...]
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    source: Path | None = field(default=None, compare=False)


def read_structured_file(path: str | os.PathLike) -> Any:
    """Parse a JSON (``.json``) or YAML (``.yaml``/``.yml``) file; InputError on failure."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputError(f"{path}: reading YAML needs PyYAML: {install_hint('train')} "
                             f"(or write the file as JSON)") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({first_line(exc)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def _int(value: Any, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InputError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{what} must be at least {minimum}, got {value}")
    return int(value)


def _intensity(value: Any, where: str) -> Intensity:
    if value is None:
        return Intensity()
    if value == "none":
        return Intensity(mode="none")
    if not isinstance(value, dict) or not set(value) <= {"window", "level", "width"}:
        raise InputError(f"{where}: 'intensity' must be \"none\" or an object with 'window' "
                         f"or 'level' and 'width', got {value!r}")
    return Intensity(window=value.get("window"), level=value.get("level"),
                     width=value.get("width"))


def _classes(value: Any, where: str) -> tuple[tuple[int, str], ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = {str(v): f"label_{v}" for v in value}
    if not isinstance(value, dict) or not value:
        raise InputError(f"{where}: 'classes' must map label ids to names, got {value!r}")
    out = []
    for key, name in value.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InputError(f"{where}: class id {key!r} is not an integer") from None
        if label <= 0:
            raise InputError(f"{where}: class id {label} must be positive (0 is background)")
        out.append((label, str(name)))
    return tuple(sorted(out))


def parse_dataset(item: Any, root: Path, where: str) -> DatasetSpec:
    """Validate one dataset entry; ``root`` resolves relative paths."""
    from ..intensity import canonical_modality, resolve_window

    if not isinstance(item, dict):
        raise InputError(f"{where}: each dataset must be an object, got {type(item).__name__}")
    unknown = set(item) - DATASET_KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(DATASET_KEYS)}")
    for key in ("name", "modality", "images"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise InputError(f"{where}: '{key}' is required (a string)")
    name = item["name"]
    if not NAME_PATTERN.match(name):
        raise InputError(f"{where}: dataset name {name!r} may only hold letters, digits, _ . -")
    where = f"{where} ({name})"
    try:
        modality = canonical_modality(item["modality"])
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    intensity = _intensity(item.get("intensity"), where)
    if intensity.mode == "modality" and (intensity.window or intensity.level is not None
                                         or intensity.width is not None):
        if modality != "ct":
            raise InputError(f"{where}: a CT window was given for modality {modality!r}")
        try:
            resolve_window(intensity.window, intensity.level, intensity.width)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
    labels = item.get("labels")
    if labels is not None and not isinstance(labels, str):
        raise InputError(f"{where}: 'labels' must be a path template string")
    if labels is not None and "{class}" in labels and item.get("classes") is None:
        raise InputError(f"{where}: a 'labels' template with {{class}} needs 'classes' (the "
                         f"class names it stands for)")
    threshold = item.get("label_threshold")
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, (int, float))):
        raise InputError(f"{where}: 'label_threshold' must be a number, got {threshold!r}")
    tile = item.get("tile_size")
    tile = None if tile is None else _int(tile, f"{where}: 'tile_size'", 16)
    overlap = _int(item.get("tile_overlap", 0), f"{where}: 'tile_overlap'", 0)
    if tile is not None and overlap >= tile:
        raise InputError(f"{where}: 'tile_overlap' ({overlap}) must be below 'tile_size' ({tile})")
    external = item.get("external", False)
    if not isinstance(external, bool):
        raise InputError(f"{where}: 'external' must be true or false, got {external!r}")
    pattern = item.get("case_pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise InputError(f"{where}: 'case_pattern' is not a regular expression "
                             f"({exc})") from None
    prompt = item.get("prompt", "box")
    if prompt not in PROMPT_STYLES:
        raise InputError(f"{where}: 'prompt' must be one of {', '.join(PROMPT_STYLES)}, "
                         f"got {prompt!r}")
    raters = item.get("raters")
    if raters is not None:
        if (not isinstance(raters, dict) or len(raters) < 2
                or not all(isinstance(k, str) and k and isinstance(v, str) and v
                           for k, v in raters.items())):
            raise InputError(f"{where}: 'raters' must map at least two rater names to mask path "
                             f"templates, got {raters!r}")
        raters = tuple(raters.items())
    group = item.get("split_group")
    if group is not None and (not isinstance(group, str) or not NAME_PATTERN.match(group)):
        raise InputError(f"{where}: 'split_group' must be a name of letters, digits, _ . -, "
                         f"got {group!r}")
    only = item.get("cases")
    if only is not None and (not isinstance(only, list) or not only
                             or not all(isinstance(c, str) and c for c in only)):
        raise InputError(f"{where}: 'cases' must be a non-empty list of case ids, got {only!r}")
    return DatasetSpec(
        name=name, modality=modality, images=item["images"], labels=labels, root=root,
        classes=_classes(item.get("classes"), where), label_threshold=threshold,
        intensity=intensity, axis=_int(item.get("axis", 0), f"{where}: 'axis'", 0),
        tile_size=tile, tile_overlap=overlap, external=external,
        min_pixels=_int(item.get("min_pixels", 100), f"{where}: 'min_pixels'", 1),
        min_voxels=_int(item.get("min_voxels", 1000), f"{where}: 'min_voxels'", 1),
        prompt=prompt, case_pattern=pattern, raters=raters, split_group=group,
        cases=tuple(only) if only is not None else None,
    )


def parse_description(data: Any, root: Path, source: Path | None = None) -> Description:
    """Validate a parsed description (dict); raises :class:`InputError` naming the problem."""
    where = str(source) if source else "description"
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object with a 'datasets' list")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    top = data.get("root")
    if top is not None:
        if not isinstance(top, str) or not top:
            raise InputError(f"{where}: 'root' must be a folder path, got {top!r}")
        root = Path(os.path.expanduser(top)) if os.path.isabs(os.path.expanduser(top)) \
            else root / top
        if not root.is_dir():
            what = "is a file, not a folder" if root.exists() else "does not exist"
            raise InputError(f"{where}: 'root' folder {root} {what}")
    items = data.get("datasets")
    if not isinstance(items, list) or not items:
        raise InputError(f"{where}: 'datasets' must be a non-empty list")
    datasets = tuple(parse_dataset(item, root, f"{where}: datasets[{i}]")
                     for i, item in enumerate(items))
    names = [d.name for d in datasets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{where}: dataset names must be unique; repeated: {dupes}")
    split = data.get("split", [0.8, 0.1, 0.1])
    if (not isinstance(split, list) or len(split) != 3
            or not all(isinstance(v, (int, float)) and v >= 0 for v in split)
            or abs(sum(split) - 1.0) > 1e-6):
        raise InputError(f"{where}: 'split' must be three non-negative fractions summing to 1, "
                         f"got {split!r}")
    seed = _int(data.get("seed", 0), f"{where}: 'seed'", 0)
    fractions = (float(split[0]), float(split[1]), float(split[2]))
    return Description(datasets, seed=seed, split=fractions, source=source)


def load_description(path: str | os.PathLike) -> Description:
    """Read and validate a description file (JSON, or YAML with PyYAML installed)."""
    path = Path(path)
    return parse_description(read_structured_file(path), path.resolve().parent, source=path)
