"""Label volumes: the one place sizes of labels are counted and given units.

:func:`volume_unit` is the unit rule used everywhere (``medsam segment``'s report,
``medsam volume``, evaluation rows): millilitres for 3D masks, mm^2 for 2D masks, and
plain voxel / pixel counts when the image has no physical pixel size.
:func:`label_volumes` applies it to every label of a label map.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .overlap import ML_PER_MM3, voxel_volume_mm

__all__ = ["LabelVolume", "label_volumes", "volume_unit", "PIXEL_UNITS"]

#: volume units of masks without a physical pixel size (sizes are counts)
PIXEL_UNITS = ("pixels", "voxels")


def volume_unit(ndim: int, spacing: Sequence[float], spacing_known: bool = True) -> tuple[float, str]:
    """(size of one voxel in the unit, the unit): ``mL`` (3D) or ``mm2`` (2D) from
    ``spacing`` (mm, array axis order); ``voxels`` / ``pixels`` (size 1) when the spacing
    is not known."""
    if not spacing_known:
        return 1.0, "voxels" if ndim == 3 else "pixels"
    return voxel_volume_mm(spacing) * (ML_PER_MM3 if ndim == 3 else 1.0), "mL" if ndim == 3 else "mm2"


@dataclasses.dataclass(frozen=True)
class LabelVolume:
    """Size of one label: its voxel (pixel) count and ``volume`` in ``unit``
    (see :func:`volume_unit`)."""

    label: int
    voxels: int
    volume: float
    unit: str

    @property
    def volume_ml(self) -> float | None:
        """Volume in millilitres for 3D labels with a known spacing, else None."""
        return self.volume if self.unit == "mL" else None

    @property
    def area_mm2(self) -> float | None:
        """Area in mm^2 for 2D labels with a known spacing, else None."""
        return self.volume if self.unit == "mm2" else None

    def describe(self, name: str = "") -> str:
        """One line, e.g. ``label 1 (liver): 6021 voxels, 150.525 mL``."""
        head = f"label {self.label}" + (f" ({name})" if name else "")
        if self.unit in PIXEL_UNITS:
            return f"{head}: {self.voxels} {self.unit} (pixel size unknown)"
        if self.unit == "mL":
            return f"{head}: {self.voxels} voxels, {self.volume:.3f} mL"
        return f"{head}: {self.voxels} pixels, {self.volume:.2f} mm^2"


def label_volumes(mask: np.ndarray, spacing: Sequence[float],
                  spacing_known: bool = True) -> list[LabelVolume]:
    """Size of every nonzero label of ``mask`` (integer labels, 2D (y, x) or 3D (z, y, x);
    ``spacing`` in mm, array axis order), sorted by label id. An all-zero mask gives []."""
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3) or len(spacing) != mask.ndim:
        raise ValueError(f"need a 2D or 3D mask with one spacing per axis, got shape {mask.shape} "
                         f"and spacing {tuple(spacing)}")
    if mask.dtype.kind not in "iub":
        raise ValueError(f"mask must hold integer labels, got dtype {mask.dtype}")
    unit_volume, unit = volume_unit(mask.ndim, spacing, spacing_known)
    values, counts = np.unique(mask[mask != 0], return_counts=True)
    return [LabelVolume(int(v), int(c), int(c) * unit_volume, unit) for v, c in zip(values, counts)]
