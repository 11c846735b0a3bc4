"""Tumour burden: agreement of predicted with reference volumes (Pearson r with a
Fisher-z interval, Bland-Altman), as in the MedSAM paper's Fig. 2e. Volumes per label
are :func:`medsam.metrics.label_volumes`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError
from ..io.geometry import Geometry
from ..metrics.volumes import LabelVolume, label_volumes
from .results import ResultRow
from .stats import BlandAltmanResult, PearsonResult, bland_altman, pearson_with_ci

__all__ = ["VolumeAgreement", "volume_agreement", "volume_pairs",
           "AGREEMENT_COLUMNS", "write_agreement", "file_volumes"]

#: columns of ``volume_agreement.csv`` (``medsam volume --agreement`` and reports)
AGREEMENT_COLUMNS = ("method", "n", "pearson_r", "r_ci_low", "r_ci_high", "confidence", "r_pvalue",
                     "bias_ml", "sd_difference_ml", "loa_low_ml", "loa_high_ml")


@dataclasses.dataclass(frozen=True)
class VolumeAgreement:
    """Agreement of predicted with reference volumes over ``n`` cases (mL)."""

    n: int
    pearson: PearsonResult
    bland_altman: BlandAltmanResult

    def row(self, method: str) -> list:
        """This agreement as a row of :data:`AGREEMENT_COLUMNS`."""
        p, ba = self.pearson, self.bland_altman
        return [method, p.n, p.r, p.ci_low, p.ci_high, p.confidence, p.pvalue, ba.mean_difference,
                ba.sd_difference, ba.lower_limit, ba.upper_limit]

    def describe(self) -> str:
        """One sentence: n, Pearson r with its interval, Bland-Altman bias and limits."""
        p, ba = self.pearson, self.bland_altman
        return (f"n = {p.n}, Pearson r = {p.r:.4f} ({p.confidence:.0%} CI {p.ci_low:.4f} to "
                f"{p.ci_high:.4f}, p = {p.pvalue:.2g}), Bland-Altman bias {ba.mean_difference:+.3f} mL, "
                f"limits of agreement {ba.lower_limit:+.3f} to {ba.upper_limit:+.3f} mL")


def volume_pairs(rows: Sequence[ResultRow], include_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, reference) volumes in mL from 3D result rows; rows whose
    reference is empty are left out unless ``include_empty``."""
    use = [r for r in rows if r.volume_unit == "mL" and (include_empty or r.gt_voxels > 0)]
    return (np.array([r.pred_volume for r in use], float), np.array([r.gt_volume for r in use], float))


def volume_agreement(predicted: ArrayLike, reference: ArrayLike,
                     confidence: float = 0.95) -> VolumeAgreement:
    """Pearson r (with CI) and Bland-Altman statistics of predicted minus
    reference volumes."""
    return VolumeAgreement(int(np.size(predicted)), pearson_with_ci(predicted, reference, confidence),
                           bland_altman(predicted, reference))


def write_agreement(predicted: np.ndarray, reference: np.ndarray, agreement: VolumeAgreement,
                    scatter: str | os.PathLike, bland_altman_path: str | os.PathLike,
                    title: str | None = None, method: str = "") -> None:
    """The scatter plot (with r) and the Bland-Altman plot of one agreement; ``method``
    names the predictions in both titles (``title`` replaces the scatter plot's)."""
    from .plots import bland_altman_plot, volume_scatter_plot

    p, ba = agreement.pearson, agreement.bland_altman
    title = title or (f"{method}: predicted vs reference volume" if method else None)
    volume_scatter_plot(predicted, reference, scatter, r=p.r, ci=(p.ci_low, p.ci_high), title=title)
    bland_altman_plot(predicted, reference, bland_altman_path, ba.mean_difference, ba.lower_limit,
                      ba.upper_limit, method=method)


def file_volumes(path: str | os.PathLike) -> tuple[list[LabelVolume], Geometry]:
    """Label volumes of a mask file (any format :func:`medsam.io.read` reads; for npz
    files the ``segs`` array, else ``gts``) with its geometry. InputError naming the
    file when it holds no integer labels."""
    from ..io import read, read_npz

    path = Path(path)
    if path.name.lower().endswith(".npz"):
        case = read_npz(path, ("segs", "gts"))
        mask, geometry = case.image, case.geometry
    else:
        mask, geometry = read(path)
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iub":
        raise InputError(f"{path}: mask must hold integer labels, got {mask.dtype}")
    if mask.dtype.kind == "i" and mask.size and mask.min() < 0:
        raise InputError(f"{path}: mask holds negative labels")
    try:
        return label_volumes(mask, geometry.spacing, geometry.spacing_known), geometry
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
