"""The CVPR 2024 "MedSAM on Laptop" npz format, so files made for LiteMedSAM work unchanged.

An input case holds:

* ``imgs``: 2D ``(H, W, 3)`` uint8 or 3D ``(D, H, W)`` uint8 (already windowed);
* ``boxes``: ``(N, 4)`` ``x0, y0, x1, y1`` for 2D or ``(N, 6)`` ``x0, y0, z0, x1, y1, z1``
  for 3D, in pixel indices (``z1`` inclusive), object ``i`` gets label ``i + 1``;
* optional ``spacing`` in ``(x, y, z)`` mm (ITK order; converted to array order on
  reading), and in some collections ``direction`` (9 values, ITK row-major) and
  ``origin`` (3 values), and ``gts`` (reference label map).

The CVPR 2025 interactive 3D challenge's cases hold, instead of a box array:

* ``boxes``: one dict per class, ``z_min``, ``z_max``, ``z_mid``, ``z_mid_x_min``,
  ``z_mid_y_min``, ``z_mid_x_max``, ``z_mid_y_max`` (a 2D box on slice ``z_mid`` and the
  object's slice range; :class:`ChallengeBox`);
* ``clicks``: one dict per class, ``{"fg": [[z, y, x], ...], "bg": [...]}`` (array index
  order), with ``clicks_order`` (per class ``["fg", "bg", ...]``);
* ``prev_pred``: the previous step's ``segs``.

``boxes`` and ``clicks`` are pickled object arrays: they are read by
:func:`~medsam.io.plain_npz.load_plain_npz`, which builds plain data only and never runs
code a file names.

Outputs hold ``segs`` (label map, same shape as ``imgs`` without the colour axis; class
``i + 1`` for the i-th box). We also store ``spacing`` (``x, y, z``), ``origin`` and
``direction`` for 3D so the mask reads back with its geometry; the challenge's evaluation
reads ``segs`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path
from .geometry import Geometry
from .plain_npz import load_plain_npz
from .values import check_finite, check_spacing

NPZ_EXTENSIONS = (".npz",)
BOX_KEYS = ("z_min", "z_max", "z_mid", "z_mid_x_min", "z_mid_y_min", "z_mid_x_max", "z_mid_y_max")


@dataclass(frozen=True)
class ChallengeBox:
    """One class's box in the CVPR 2025 interactive challenge: a 2D box ``x_min, y_min,
    x_max, y_max`` (pixel indices, inclusive) on slice ``z_mid``, and the object's slice
    range ``z_min..z_max``."""

    z_min: int
    z_max: int
    z_mid: int
    x_min: int
    y_min: int
    x_max: int
    y_max: int

    def to_dict(self) -> dict[str, int]:
        """The challenge's keys (``z_mid_x_min`` ...)."""
        return dict(zip(BOX_KEYS, (self.z_min, self.z_max, self.z_mid, self.x_min, self.y_min,
                                   self.x_max, self.y_max)))


@dataclass(frozen=True)
class Interaction:
    """The interactive challenge's prompts of a case: per class (class ``i + 1`` for entry
    ``i``) its box and its clicks in order, ``((z, y, x), foreground)``; ``prev_pred`` is
    the previous step's label map or None."""

    boxes: tuple[ChallengeBox, ...]
    clicks: tuple[tuple[tuple[tuple[int, int, int], bool], ...], ...]
    prev_pred: np.ndarray | None = None


@dataclass(frozen=True)
class NpzCase:
    """One challenge-format case.

    Attributes:
        image: ``imgs`` (``(H, W, 3)`` or ``(D, H, W)``), or ``segs`` / ``gts`` when the file is
            a mask file without ``imgs``.
        geometry: 2D or 3D geometry (spacing converted to array axis order).
        boxes: ``(N, 4)`` or ``(N, 6)`` float array, or None when the file has no boxes.
        gts: reference label map when present, else None.
        interaction: the interactive challenge's boxes and clicks, else None.
        placed: the file records ``origin`` and ``direction`` (else only its spacing).
    """

    image: np.ndarray
    geometry: Geometry
    boxes: np.ndarray | None = None
    gts: np.ndarray | None = None
    interaction: Interaction | None = None
    placed: bool = False

    @property
    def is_3d(self) -> bool:
        return self.geometry.ndim == 3


def _infer_ndim(image: np.ndarray, boxes: np.ndarray | None, spacing: np.ndarray | None,
                path: Path) -> int:
    if boxes is not None and boxes.ndim == 2 and boxes.shape[1] in (4, 6):
        return 2 if boxes.shape[1] == 4 else 3
    if spacing is not None and spacing.size in (2, 3):
        return int(spacing.size)
    if image.ndim == 2:
        return 2
    if image.ndim == 3:
        return 2 if image.shape[-1] in (3, 4) else 3
    raise InputError(f"{path}: 'imgs' has shape {image.shape}; expected (H, W, 3) or (D, H, W)")


def read_npz(path: str | os.PathLike, keys: tuple[str, ...] = ("imgs", "segs", "gts")) -> NpzCase:
    """Read a challenge-format npz file (see the module docstring); ``image`` is the first of
    ``keys`` the file holds (a mask file is read with ``("segs",)`` or ``("gts",)``)."""
    path = Path(path)
    arrays = load_plain_npz(path)
    for name in ("imgs", "segs", "gts", "spacing", "origin", "direction", "prev_pred"):
        if name in arrays and not isinstance(arrays[name], np.ndarray):
            raise InputError(f"{path}: '{name}' must be a numeric array, not {type(arrays[name]).__name__}")
    interaction = None
    if isinstance(arrays.get("boxes"), list):  # the interactive challenge's dicts
        interaction = _interaction(arrays, path)
        arrays.pop("boxes")
    key = next((k for k in keys if k in arrays), None)
    if key is None:
        raise InputError(f"{path}: npz file has none of the keys {', '.join(repr(k) for k in keys)} "
                         f"(found: {', '.join(sorted(arrays)) or 'nothing'})")
    image = arrays[key]
    boxes = arrays.get("boxes")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=float)
        if boxes.ndim == 1 and boxes.size in (4, 6):
            boxes = boxes[None]
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 6):
            raise InputError(f"{path}: 'boxes' has shape {boxes.shape}; expected (N, 4) or (N, 6)")
    spacing = arrays.get("spacing")
    spacing = None if spacing is None else np.asarray(spacing, dtype=float).ravel()
    ndim = _infer_ndim(image, boxes, spacing, path)
    expected_ndim = ndim + (1 if ndim == 2 and image.ndim == 3 else 0)
    if image.ndim != expected_ndim or (image.ndim == 3 and ndim == 2 and image.shape[-1] not in (3, 4)):
        raise InputError(f"{path}: '{key}' has shape {image.shape}, which does not fit a {ndim}D case")
    if ndim == 2 and image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if spacing is not None and spacing.size != ndim:
        raise InputError(f"{path}: 'spacing' has {spacing.size} values for a {ndim}D image")
    if spacing is not None:
        check_spacing(spacing, path, "'spacing'")
    try:
        geometry = Geometry(
            spacing=tuple(spacing[::-1]) if spacing is not None else (1.0,) * ndim,
            origin=tuple(np.ravel(arrays["origin"])) if "origin" in arrays else (),
            direction=tuple(np.ravel(arrays["direction"])) if "direction" in arrays else (),
            spacing_known=spacing is not None,
        )
    except ValueError as exc:
        raise InputError(f"{path}: bad geometry ({exc})") from None
    gts = arrays.get("gts") if key != "gts" else None
    check_finite(image, path)
    if interaction is not None:
        _check_interaction(interaction, image.shape, ndim, path)
    return NpzCase(image=image, geometry=geometry, boxes=boxes, gts=gts, interaction=interaction,
                   placed="origin" in arrays and "direction" in arrays)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _interaction(arrays: dict[str, Any], path: Path) -> Interaction:
    boxes = []
    for i, item in enumerate(arrays["boxes"]):
        if not isinstance(item, dict) or set(BOX_KEYS) - set(item) or not all(_whole(item[k]) for k in BOX_KEYS):
            raise InputError(f"{path}: class {i + 1}: a box must be a dict of whole numbers "
                             f"{', '.join(BOX_KEYS)}, got {item!r}")
        boxes.append(ChallengeBox(*(int(item[k]) for k in BOX_KEYS)))
    raw = arrays.get("clicks", [])
    raw = [] if isinstance(raw, np.ndarray) and raw.size == 0 else raw
    order = arrays.get("clicks_order", [])
    order = order.tolist() if isinstance(order, np.ndarray) else order
    if not isinstance(raw, list) or not isinstance(order, list):
        raise InputError(f"{path}: 'clicks' must be one dict per class, with 'clicks_order'")
    if len(raw) > len(boxes):
        raise InputError(f"{path}: class {len(boxes) + 1}: has clicks but no box "
                         f"({len(raw)} click entries, {len(boxes)} boxes)")
    clicks = []
    for i, entry in enumerate(raw):
        where = f"{path}: class {i + 1}"
        if not isinstance(entry, dict) or set(entry) - {"fg", "bg"}:
            raise InputError(f"{where}: clicks must be a dict {{'fg': [[z, y, x], ...], 'bg': [...]}}, "
                             f"got {entry!r}")
        points = {}
        for kind in ("fg", "bg"):
            value = entry.get(kind, [])
            value = value.tolist() if isinstance(value, np.ndarray) else value
            if not isinstance(value, list) or not all(
                    isinstance(p, list) and len(p) == 3 and all(_whole(v) for v in p) for p in value):
                raise InputError(f"{where}: '{kind}' clicks must be a list of [z, y, x] whole numbers, "
                                 f"got {value!r}")
            points[kind] = value
        kinds = order[i] if i < len(order) else None
        if kinds is None or not isinstance(kinds, list) or not all(k in ("fg", "bg") for k in kinds) \
                or [kinds.count("fg"), kinds.count("bg")] != [len(points["fg"]), len(points["bg"])]:
            raise InputError(f"{where}: 'clicks_order' must list 'fg'/'bg' once per click "
                             f"({len(points['fg'])} fg, {len(points['bg'])} bg), got {kinds!r}")
        taken = {"fg": 0, "bg": 0}
        ordered = []
        for kind in kinds:
            z, y, x = points[kind][taken[kind]]
            taken[kind] += 1
            ordered.append(((int(z), int(y), int(x)), kind == "fg"))
        clicks.append(tuple(ordered))
    clicks += [()] * (len(boxes) - len(clicks))
    prev = arrays.get("prev_pred")
    return Interaction(tuple(boxes), tuple(clicks), prev)


def _check_interaction(interaction: Interaction, shape: tuple[int, ...], ndim: int, path: Path) -> None:
    if ndim != 3 or len(shape) != 3:
        raise InputError(f"{path}: interactive boxes need a 3D 'imgs' (D, H, W), got shape {shape}")
    depth, h, w = shape
    for i, (b, clicks) in enumerate(zip(interaction.boxes, interaction.clicks)):
        where = f"{path}: class {i + 1}"
        if not 0 <= b.z_min <= b.z_mid <= b.z_max < depth:
            raise InputError(f"{where}: the box's slice range {b.z_min}..{b.z_max} does not contain its "
                             f"key slice z_mid {b.z_mid} within the volume's {depth} slices")
        if not (0 <= b.x_min <= b.x_max < w and 0 <= b.y_min <= b.y_max < h):
            raise InputError(f"{where}: the box x {b.x_min}..{b.x_max}, y {b.y_min}..{b.y_max} lies "
                             f"outside the image (width {w}, height {h})")
        for (z, y, x), fg in clicks:
            if not (0 <= z < depth and 0 <= y < h and 0 <= x < w):
                raise InputError(f"{where}: {'fg' if fg else 'bg'} click [z, y, x] = [{z}, {y}, {x}] lies "
                                 f"outside the volume ({depth}, {h}, {w})")
    prev = interaction.prev_pred
    if prev is not None and tuple(prev.shape) != tuple(shape):
        raise InputError(f"{path}: 'prev_pred' has shape {tuple(prev.shape)}, the image {tuple(shape)}")


def write_npz(segs: np.ndarray, path: str | os.PathLike, geometry: Geometry | None = None,
              overwrite: bool = False, **extra: np.ndarray) -> Path:
    """Write a label map as a challenge output file (key ``segs``), atomically.

    ``segs`` is ``(H, W)`` or ``(D, H, W)``; with a geometry whose spacing is known (always
    for 3D), ``spacing`` (``x, y, z``), ``origin`` and ``direction`` are stored too.
    ``extra`` arrays are stored under their own keys.
    """
    path = Path(path)
    segs = np.asarray(segs)
    if segs.dtype == bool:
        segs = segs.astype(np.uint8)
    geometry = geometry or Geometry.default(segs.ndim)
    geometry.check_shape(segs.shape, what="segs")
    arrays = {"segs": segs}
    if geometry.spacing_known or geometry.ndim == 3:
        arrays["spacing"] = np.asarray(geometry.spacing_xyz, dtype=float)
        arrays["origin"] = np.asarray(geometry.origin, dtype=float)
        arrays["direction"] = np.asarray(geometry.direction, dtype=float)
    arrays.update(extra)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds badly
    return path
