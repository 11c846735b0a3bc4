"""The CVPR 2024 "MedSAM on Laptop" npz format, so files made for LiteMedSAM work unchanged.

An input case holds:

* ``imgs``: 2D ``(H, W, 3)`` uint8 or 3D ``(D, H, W)`` uint8 (already windowed);
* ``boxes``: ``(N, 4)`` ``x0, y0, x1, y1`` for 2D or ``(N, 6)`` ``x0, y0, z0, x1, y1, z1``
  for 3D, in pixel indices (``z1`` inclusive), object ``i`` gets label ``i + 1``;
* optional ``spacing`` in ``(x, y, z)`` mm (ITK order; converted to array order on
  reading), and in some collections ``direction`` (9 values, ITK row-major) and
  ``origin`` (3 values), and ``gts`` (reference label map).

Outputs hold ``segs`` (label map, same shape as ``imgs`` without the colour axis). We
also store ``spacing`` (``x, y, z``), ``origin`` and ``direction`` for 3D so the mask reads
back with its geometry; the challenge's evaluation reads ``segs`` only.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path
from .geometry import Geometry
from .values import check_finite

NPZ_EXTENSIONS = (".npz",)


@dataclass(frozen=True)
class NpzCase:
    """One challenge-format case.

    Attributes:
        image: ``imgs`` (``(H, W, 3)`` or ``(D, H, W)``), or ``segs`` / ``gts`` when the file is
            a mask file without ``imgs``.
        geometry: 2D or 3D geometry (spacing converted to array axis order).
        boxes: ``(N, 4)`` or ``(N, 6)`` float array, or None when the file has no boxes.
        gts: reference label map when present, else None.
    """

    image: np.ndarray
    geometry: Geometry
    boxes: np.ndarray | None = None
    gts: np.ndarray | None = None

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


def read_npz(path: str | os.PathLike) -> NpzCase:
    """Read a challenge-format npz file (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: cannot read npz file ({exc})") from None
    key = next((k for k in ("imgs", "segs", "gts") if k in arrays), None)
    if key is None:
        raise InputError(f"{path}: npz file has none of the keys 'imgs', 'segs', 'gts' "
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
    return NpzCase(image=image, geometry=geometry, boxes=boxes, gts=gts)


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
