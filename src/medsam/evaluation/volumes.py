"""Tumour burden: volumes per label and agreement of predicted with reference
volumes (Pearson r with a Fisher-z interval, Bland-Altman), as in the MedSAM
paper's Fig. 2e."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..metrics.overlap import ML_PER_MM3, voxel_volume_mm
from .results import ResultRow
from .stats import BlandAltmanResult, PearsonResult, bland_altman, pearson_with_ci

__all__ = ["LabelVolume", "label_volumes", "VolumeAgreement", "volume_agreement", "volume_pairs"]


@dataclasses.dataclass(frozen=True)
class LabelVolume:
    """Size of one label: voxel count and volume in mL (3D) or area in mm^2 (2D)."""

    label: int
    voxels: int
    volume: float
    unit: str


def label_volumes(mask: np.ndarray, spacing: Sequence[float],
                  spacing_known: bool = True) -> list[LabelVolume]:
    """Volume of every nonzero label of ``mask`` (2D (y, x) or 3D (z, y, x));
    ``spacing`` in mm, array axis order. 3D volumes are in mL (1 mL =
    1000 mm^3), 2D sizes in mm^2; without a known spacing, counts in ``voxels`` /
    ``pixels``."""
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3) or len(spacing) != mask.ndim:
        raise ValueError(f"need a 2D or 3D mask with one spacing per axis, got shape {mask.shape} "
                         f"and spacing {tuple(spacing)}")
    if mask.dtype.kind not in "iub":
        raise ValueError(f"mask must hold integer labels, got dtype {mask.dtype}")
    if spacing_known:
        unit_volume = voxel_volume_mm(spacing) * (ML_PER_MM3 if mask.ndim == 3 else 1.0)
        unit = "mL" if mask.ndim == 3 else "mm2"
    else:
        unit_volume, unit = 1.0, "voxels" if mask.ndim == 3 else "pixels"
    values, counts = np.unique(mask, return_counts=True)
    return [LabelVolume(int(v), int(c), int(c) * unit_volume, unit) for v, c in zip(values, counts) if v != 0]


@dataclasses.dataclass(frozen=True)
class VolumeAgreement:
    """Agreement of predicted with reference volumes over ``n`` cases (mL)."""

    n: int
    pearson: PearsonResult
    bland_altman: BlandAltmanResult


def volume_pairs(rows: Sequence[ResultRow], include_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, reference) volumes in mL from 3D result rows; rows whose
    reference is empty are left out unless ``include_empty``."""
    use = [r for r in rows if r.volume_unit == "mL" and (include_empty or r.gt_voxels > 0)]
    return (np.array([r.pred_volume for r in use], float), np.array([r.gt_volume for r in use], float))


def volume_agreement(predicted: Sequence[float], reference: Sequence[float],
                     confidence: float = 0.95) -> VolumeAgreement:
    """Pearson r (with CI) and Bland-Altman statistics of predicted minus
    reference volumes."""
    predicted, reference = np.asarray(predicted, float), np.asarray(reference, float)
    return VolumeAgreement(int(predicted.size), pearson_with_ci(predicted, reference, confidence),
                           bland_altman(predicted, reference))
