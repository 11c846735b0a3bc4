"""Image geometry: where the voxels of an array sit in physical (world) space.

Conventions (used throughout the package)
-----------------------------------------
* Arrays are indexed in **array axis order**: 3D volumes ``(z, y, x)``, 2D images
  ``(y, x)`` (optionally with a trailing colour axis ``(y, x, 3)``).
* ``Geometry.spacing`` is in the same array axis order, in millimetres:
  ``(z, y, x)`` for 3D, ``(y, x)`` for 2D.
* ``Geometry.origin`` and ``Geometry.direction`` are in **world** terms, exactly as
  ITK / SimpleITK report them (LPS patient coordinates for medical images): ``origin``
  is the world position ``(x, y, z)`` in mm of the centre of the voxel with index 0,
  and ``direction`` is the row-major ``d x d`` matrix whose *columns* are the world
  directions of the image index axes ``i, j, k`` (i = column = array axis -1,
  j = row = array axis -2, k = slice = array axis 0 in 3D).

The mapping from an array index ``(z, y, x)`` to a world point ``p`` is::

    p = origin + direction @ (spacing_xyz * (x, y, z))

which is ITK's ``TransformContinuousIndexToPhysicalPoint``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import SimpleITK as sitk


def _floats(values: Sequence[float], name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in np.asarray(values, dtype=float).ravel())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Geometry.{name} must be a sequence of numbers, got {values!r}") from exc
    if not all(np.isfinite(out)):
        raise ValueError(f"Geometry.{name} must be finite, got {values!r}")
    return out


@dataclass(frozen=True)
class Geometry:
    """Physical placement of an image array (see the module docstring for axis conventions).

    Attributes:
        spacing: voxel size in mm in ARRAY axis order, ``(z, y, x)`` or ``(y, x)``.
        origin: world position (ITK/LPS ``(x, y, z)`` or ``(x, y)``, mm) of voxel index 0.
        direction: row-major ``d*d`` direction-cosine matrix in ITK order (columns are
            the world directions of index axes x, y[, z]).
        spacing_known: False when the file carried no physical pixel size (most PNG/JPEG
            images); ``spacing`` is then 1 mm per pixel and physical measures are in pixels.
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...] = field(default=())
    direction: tuple[float, ...] = field(default=())
    spacing_known: bool = True

    def __post_init__(self) -> None:
        spacing = _floats(self.spacing, "spacing")
        d = len(spacing)
        if d not in (2, 3):
            raise ValueError(f"Geometry supports 2D and 3D images, got spacing {self.spacing!r}")
        if any(s <= 0 for s in spacing):
            raise ValueError(f"Geometry.spacing must be positive, got {self.spacing!r}")
        origin = _floats(self.origin, "origin") if len(self.origin) else (0.0,) * d
        direction = (_floats(self.direction, "direction") if len(self.direction)
                     else tuple(np.eye(d).ravel().tolist()))
        if len(origin) != d:
            raise ValueError(f"Geometry.origin must have {d} values, got {self.origin!r}")
        if len(direction) != d * d:
            raise ValueError(f"Geometry.direction must have {d * d} values, got {self.direction!r}")
        m = np.asarray(direction).reshape(d, d)
        if not np.allclose(m.T @ m, np.eye(d), atol=1e-4):
            raise ValueError(f"Geometry.direction must be orthonormal, got {self.direction!r}")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "spacing_known", bool(self.spacing_known))

    # ------------------------------------------------------------------ basics
    @classmethod
    def default(cls, ndim: int, spacing_known: bool = False) -> "Geometry":
        """Identity geometry: 1 mm spacing, origin 0, identity direction."""
        return cls(spacing=(1.0,) * ndim, spacing_known=spacing_known)

    @property
    def ndim(self) -> int:
        return len(self.spacing)

    @property
    def spacing_xyz(self) -> tuple[float, ...]:
        """Spacing in ITK index order ``(x, y[, z])``."""
        return tuple(reversed(self.spacing))

    @property
    def matrix(self) -> np.ndarray:
        """The direction matrix as a ``(d, d)`` array (columns = index axes x, y[, z])."""
        return np.asarray(self.direction, dtype=float).reshape(self.ndim, self.ndim)

    def with_spacing(self, spacing: Sequence[float], spacing_known: bool = True) -> "Geometry":
        """A copy with a new spacing (array axis order)."""
        return replace(self, spacing=tuple(spacing), spacing_known=spacing_known)

    def check_shape(self, shape: Sequence[int], what: str = "array") -> None:
        """Raise ValueError unless ``shape`` is a ``ndim``-D grid, optionally with a
        trailing colour axis of 3 or 4 channels for 2D."""
        shape = tuple(shape)
        spatial = len(shape)
        if spatial == self.ndim + 1 and self.ndim == 2 and shape[-1] in (3, 4):
            spatial = self.ndim
        if spatial != self.ndim:
            raise ValueError(f"{what} of shape {shape} does not match a {self.ndim}D geometry")

    # ------------------------------------------------------- index <-> world
    def index_to_world(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """Map array indices to world points.

        Args:
            index: ``(..., d)`` continuous indices in ARRAY axis order (``(z, y, x)``).
        Returns:
            ``(..., d)`` world points in ITK order (``(x, y, z)`` mm, LPS).
        """
        idx = np.asarray(index, dtype=float)
        if idx.shape[-1] != self.ndim:
            raise ValueError(f"index must end in {self.ndim} values, got shape {idx.shape}")
        ijk = idx[..., ::-1] * np.asarray(self.spacing_xyz)
        return ijk @ self.matrix.T + np.asarray(self.origin)

    def world_to_index(self, point: np.ndarray | Sequence[float]) -> np.ndarray:
        """Map world points (``(..., d)``, ITK order ``(x, y, z)`` mm) to continuous array
        indices ``(..., d)`` in ARRAY axis order (``(z, y, x)``)."""
        p = np.asarray(point, dtype=float)
        if p.shape[-1] != self.ndim:
            raise ValueError(f"point must end in {self.ndim} values, got shape {p.shape}")
        ijk = (p - np.asarray(self.origin)) @ self.matrix / np.asarray(self.spacing_xyz)
        return ijk[..., ::-1]

    def axes_onto(self, shape: Sequence[int], other: "Geometry", other_shape: Sequence[int],
                  atol: float = 1e-3) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """How an array of ``shape`` in this geometry is laid out in ``other``'s grid, when
        both cover the same voxels in the world up to axis flips and permutations (a NIfTI
        written from a DICOM series, with its rows or slices reversed): ``(order, flipped)``
        such that ``np.flip(np.transpose(array, order), flipped)`` is the array in
        ``other``'s layout. None when the grids differ in any other way (spacing, a shift,
        a rotation, a different extent)."""
        d = self.ndim
        if other.ndim != d or len(shape) < d or len(other_shape) < d:
            return None
        base = other.world_to_index(self.index_to_world(np.zeros(d)))
        steps = other.world_to_index(self.index_to_world(np.eye(d))) - base   # row k: axis k's step
        order = [-1] * d
        flipped = []
        for k in range(d):
            m = int(np.argmax(np.abs(steps[k])))
            unit = np.zeros(d)
            unit[m] = np.sign(steps[k][m])
            if not np.allclose(steps[k], unit, atol=atol) or order[m] != -1 or shape[k] != other_shape[m]:
                return None
            order[m] = k
            if unit[m] < 0:
                flipped.append(m)
        for m in range(d):
            start = other_shape[m] - 1 if m in flipped else 0
            if abs(base[m] - start) > 0.01:
                return None
        return tuple(order), tuple(flipped)

    # ------------------------------------------------------------ SimpleITK
    @classmethod
    def from_sitk(cls, image: "sitk.Image", spacing_known: bool = True) -> "Geometry":
        """The geometry of a SimpleITK image (its spacing is reversed into array order)."""
        return cls(
            spacing=tuple(reversed(image.GetSpacing())),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
            spacing_known=spacing_known,
        )

    def apply_to(self, image: "sitk.Image") -> "sitk.Image":
        """Set this geometry on a SimpleITK image (in place) and return it."""
        if image.GetDimension() != self.ndim:
            raise ValueError(f"a {image.GetDimension()}D image cannot take a {self.ndim}D geometry")
        image.SetSpacing(self.spacing_xyz)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def to_sitk(self, array: np.ndarray) -> "sitk.Image":
        """A SimpleITK image holding ``array`` (array axis order; 2D arrays may carry a
        trailing colour axis) with this geometry."""
        import SimpleITK as sitk

        array = np.asarray(array)
        self.check_shape(array.shape)
        if array.dtype == bool:
            array = array.astype(np.uint8)
        is_vector = array.ndim == self.ndim + 1
        return self.apply_to(sitk.GetImageFromArray(array, isVector=is_vector))
