"""Where prompts lie in an image: every geometric check of a box, a click, a slice and a
slice range, and the conversions between boxes, masks and world coordinates.

The checks here are the only ones: prompts files, the command line, the interactive session,
the web app and the 2D predictor all call them, so one box is valid or not everywhere.

Conventions: 2D boxes are ``(x0, y0, x1, y1)`` in pixel coordinates of the original
image (x = column, y = row), with ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``:
a box has a positive width and height everywhere (coordinates are continuous; a box from a
mask spans its min..max pixel indices, as MedSAM builds them, and :func:`mask_to_box` gives
a one-pixel-wide object a box one pixel wide). 3D boxes are ``(x0, y0, z0, x1, y1, z1)``
with ``z0 <= z1`` slice indices, both inclusive. A click ``(x, y)`` lies in the image with
``0 <= x <= W`` and ``0 <= y <= H``, on a whole slice of the volume within the object's
slice range. World boxes hold two opposite corners in mm, ITK/LPS order ``(x, y[, z])``
(or RAS, as 3D Slicer displays them, with ``frame="RAS"``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError
from .io.geometry import Geometry


def validate_box_2d(box: ArrayLike, shape: Sequence[int], what: str = "box") -> np.ndarray:
    """Check a 2D box against an image of ``shape`` ``(H, W, ...)``; return it as float array.

    Raises:
        InputError: wrong length, non-finite values, zero size, or outside the image.
    """
    b = np.asarray(box, dtype=float).ravel()
    if b.size != 4 or not np.all(np.isfinite(b)):
        raise InputError(f"{what}: expected 4 finite numbers x0,y0,x1,y1, got {list(np.ravel(box))}")
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = b
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"{what} {_fmt(b)}: zero or negative size (need x0 < x1 and y0 < y1)")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise InputError(f"{what} {_fmt(b)}: outside the image (width {w}, height {h})")
    return b


def validate_boxes(boxes: ArrayLike, shape: Sequence[int]) -> np.ndarray:
    """Check N 2D boxes (shape ``(4,)`` or ``(N, 4)``) against an image of ``shape``
    ``(H, W, ...)`` with :func:`validate_box_2d`'s rule; return them as ``(N, 4)`` float.

    Raises:
        InputError: the wrong shape, or a box that :func:`validate_box_2d` refuses (named by
        its index).
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"boxes must have shape (4,) or (N, 4) as x0, y0, x1, y1, got {np.shape(boxes)}")
    for i, box in enumerate(arr):
        validate_box_2d(box, shape, f"box {i}")
    return arr


def validate_point(x: float, y: float, shape: Sequence[int], what: str = "point") -> None:
    """Check a click ``(x, y)`` (column, row) against an image of ``shape`` ``(H, W, ...)``."""
    h, w = int(shape[0]), int(shape[1])
    if not (np.isfinite(x) and np.isfinite(y) and 0 <= x <= w and 0 <= y <= h):
        raise InputError(f"{what}: outside the image (width {w}, height {h})")


def validate_points(points: ArrayLike, labels: ArrayLike | None, shape: Sequence[int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Check clicks as the predictor takes them: ``points`` ``(K, 2)`` or ``(N, K, 2)`` x, y
    with ``labels`` ``(K,)`` or ``(N, K)``, 1 foreground and 0 background, each point in an
    image of ``shape`` (:func:`validate_point`). Returns ``(N, K, 2)`` float and ``(N, K)``
    int64."""
    if labels is None:
        raise InputError("point_labels are required with points (1 foreground, 0 background)")
    pts = np.asarray(points, dtype=np.float64)
    lab = np.asarray(labels)
    if pts.ndim == 2:
        pts, lab = pts[None], lab[None]
    if pts.ndim != 3 or pts.shape[2] != 2:
        raise InputError(f"points must have shape (K, 2) or (N, K, 2) as x, y, got {np.shape(points)}")
    if lab.shape != pts.shape[:2]:
        raise InputError(f"point_labels must have shape {pts.shape[:2]} to match the points, "
                         f"got {np.shape(labels)}")
    if not np.all(np.isin(lab, (0, 1))):
        raise InputError("point_labels must be 1 (foreground) or 0 (background)")
    for x, y in pts.reshape(-1, 2):
        validate_point(x, y, shape, f"point [{x:g}, {y:g}]")
    return pts, lab.astype(np.int64)


def validate_click_slice(z: float, depth: int, z_range: tuple[int, int] | None, what: str) -> int:
    """Check a click's slice: a whole slice of a ``depth``-slice volume, within the object's
    inclusive ``z_range`` (None: any slice). Returns it as int."""
    if not (np.isfinite(z) and float(z).is_integer()):
        raise InputError(f"{what}: slice {z:g} is not a whole slice number")
    if not 0 <= z < depth:
        raise InputError(f"{what}: slice {z:g} is outside the volume ({depth} slices)")
    if z_range is not None and not z_range[0] <= z <= z_range[1]:
        raise InputError(f"{what}: slice {z:g} is outside the object's slice range "
                         f"{z_range[0]}..{z_range[1]}")
    return int(z)


def validate_z_range(z0: float, z1: float, depth: int, what: str = "box") -> tuple[int, int]:
    """Check an inclusive slice range against a volume of ``depth`` slices."""
    if not (np.isfinite(z0) and np.isfinite(z1)):
        raise InputError(f"{what}: slice indices must be finite, got {z0}, {z1}")
    lo, hi = int(round(z0)), int(round(z1))
    if hi < lo:
        raise InputError(f"{what}: z0 {lo} is after z1 {hi}")
    if lo < 0 or hi >= depth:
        raise InputError(f"{what}: slices {lo}..{hi} are outside the volume (0..{depth - 1})")
    return lo, hi


def validate_slice(index: float, depth: int, what: str = "slice") -> int:
    """Check a slice index (0-based) against a volume of ``depth`` slices."""
    if isinstance(index, bool) or not float(index).is_integer():
        raise InputError(f"{what} {index!r}: must be a whole slice number")
    k = int(index)
    if not 0 <= k < depth:
        raise InputError(f"{what} {k} is out of range: the volume has slices 0..{depth - 1}")
    return k


def mask_to_box(mask: np.ndarray, margin: float = 0.0) -> np.ndarray | None:
    """Bounding box ``(x0, y0, x1, y1)`` of a 2D mask's pixel indices, grown by ``margin``
    pixels on every side and clipped to the image; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    box = np.array([cols[0] - margin, rows[0] - margin, cols[-1] + margin, rows[-1] + margin], float)
    box[[0, 2]] = np.clip(box[[0, 2]], 0, w - 1)
    box[[1, 3]] = np.clip(box[[1, 3]], 0, h - 1)
    return np.array(index_box(box[0], box[1], box[2], box[3], (h, w)), float)


def index_box(x_min: float, y_min: float, x_max: float, y_max: float, shape: Sequence[int] | None = None
              ) -> tuple[float, float, float, float]:
    """A box from inclusive pixel indices (a mask's extent, the CVPR 2025 challenge's boxes)
    as a box ``(x0, y0, x1, y1)`` of an image of ``shape`` ``(H, W, ...)``: the same numbers
    (MedSAM's convention), except that a one-pixel-wide (or -high) extent becomes a box one
    pixel wide, since a box has a positive size (within ``shape``, when given)."""
    h, w = (np.inf, np.inf) if shape is None else (int(shape[0]), int(shape[1]))
    x0, y0, x1, y1 = float(x_min), float(y_min), float(x_max), float(y_max)
    return x0, y0, max(x1, min(x0 + 1, w)), max(y1, min(y0 + 1, h))


def perturb_box(box: np.ndarray, shift: int, limits: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
    """Grow each side of a 2D ``box`` by a random 0..``shift`` pixels (MedSAM's box
    perturbation), clipped to ``limits`` = (h, w) of the image the box is in."""
    if shift <= 0:
        return box
    grow = rng.integers(0, shift + 1, size=4)
    h, w = limits
    return np.array([max(0.0, box[0] - grow[0]), max(0.0, box[1] - grow[1]),
                     min(float(w), box[2] + grow[2]), min(float(h), box[3] + grow[3])])


def world_box_to_pixels(box: ArrayLike, geometry: Geometry, shape: Sequence[int],
                        frame: str = "LPS", what: str = "box") -> np.ndarray:
    """Convert a world box (two opposite corners in mm) to a pixel box of the image.

    Args:
        box: ``(x0, y0, x1, y1)`` for 2D images, ``(x0, y0, z0, x1, y1, z1)`` for volumes.
        geometry: the image's geometry; ``shape`` its array shape (array axis order).
        frame: ``"LPS"`` (ITK, DICOM) or ``"RAS"`` (3D Slicer's display; x and y negated).
    Returns:
        ``(x0, y0, x1, y1)`` or ``(x0, y0, z0, x1, y1, z1)`` in pixel / slice coordinates
        (z rounded to whole slices), clipped to the image when it overlaps partly.
    Raises:
        InputError: wrong number of values, or the box does not overlap the image.
    """
    d = geometry.ndim
    b = np.asarray(box, dtype=float).ravel()
    if b.size != 2 * d or not np.all(np.isfinite(b)):
        raise InputError(f"{what}: a world box on a {d}D image needs {2 * d} numbers "
                         f"({'x0,y0,z0,x1,y1,z1' if d == 3 else 'x0,y0,x1,y1'}), got {list(b)}")
    frame = frame.upper()
    if frame not in ("LPS", "RAS"):
        raise ValueError(f"frame must be 'LPS' or 'RAS', got {frame!r}")
    lo, hi = b[:d].copy(), b[d:].copy()
    if frame == "RAS":
        lo[:2] *= -1
        hi[:2] *= -1
    corners = np.array(np.meshgrid(*[[lo[i], hi[i]] for i in range(d)], indexing="ij")).reshape(d, -1).T
    # (2**d, d) array order (z, y, x); rounding drops float noise from the mm -> index trip
    idx = np.round(geometry.world_to_index(corners), 6)
    imin, imax = idx.min(axis=0), idx.max(axis=0)
    size = np.asarray(shape[:d], dtype=float)
    # pixel boxes are continuous with pixel i spanning [i - 0.5, i + 0.5] around its centre
    if np.any(imax < -0.5) or np.any(imin > size - 0.5):
        raise InputError(f"{what} {_fmt(b)} ({frame} mm) does not overlap the image")
    if d == 2:
        (y0, x0), (y1, x1) = np.clip(imin, 0, size), np.clip(imax, 0, size)
        out = np.array([x0, y0, x1, y1])
        return validate_box_2d(out, shape, what)
    z0, z1 = int(np.clip(np.round(imin[0]), 0, size[0] - 1)), int(np.clip(np.round(imax[0]), 0, size[0] - 1))
    y0, x0 = np.clip(imin[1:], 0, size[1:])
    y1, x1 = np.clip(imax[1:], 0, size[1:])
    validate_box_2d([x0, y0, x1, y1], shape[1:], what)
    return np.array([x0, y0, z0, x1, y1, z1], dtype=float)


def reference_box_to_world(box: ArrayLike, reference: Geometry, what: str = "box") -> np.ndarray:
    """A box in the pixel / voxel indices of a reference image, as a world box (LPS mm).

    The reference is another file of the same scan whose grid may differ from the image
    to segment (a NIfTI whose rows run the other way from the DICOM series, a resampled
    copy): its box goes through world coordinates, then :func:`world_box_to_pixels`
    places it on the image.

    Args:
        box: ``(x0, y0, x1, y1)`` or ``(x0, y0, z0, x1, y1, z1)`` in the reference's indices.
        reference: the reference's geometry.
    Returns:
        ``(x0, y0, x1, y1)`` or ``(x0, y0, z0, x1, y1, z1)``: the box's extent in LPS mm.
    Raises:
        InputError: the number of values does not fit the reference's dimension.
    """
    d = reference.ndim
    b = np.asarray(box, dtype=float).ravel()
    if b.size != 2 * d or not np.all(np.isfinite(b)):
        raise InputError(f"{what}: a box on a {d}D reference image needs {2 * d} numbers "
                         f"({'x0,y0,z0,x1,y1,z1' if d == 3 else 'x0,y0,x1,y1'}), got {list(b)}")
    lo, hi = b[:d], b[d:]                                     # (x, y[, z])
    corners = np.array(np.meshgrid(*[[lo[i], hi[i]] for i in range(d)], indexing="ij")).reshape(d, -1).T
    world = reference.index_to_world(corners[:, ::-1])      # indices in array order (z, y, x)
    return np.concatenate([world.min(axis=0), world.max(axis=0)])


def _fmt(b: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:g}" for v in b) + ")"
