"""Tumour burden: agreement of predicted with reference volumes (Pearson r with a
Fisher-z interval, Bland-Altman), as in the MedSAM paper's Fig. 2e. Volumes per label
are :func:`medsam.metrics.label_volumes`."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ..metrics.volumes import LabelVolume, label_volumes
from .results import ResultRow
from .stats import BlandAltmanResult, PearsonResult, bland_altman, pearson_with_ci

__all__ = ["LabelVolume", "label_volumes", "VolumeAgreement", "volume_agreement", "volume_pairs"]


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
