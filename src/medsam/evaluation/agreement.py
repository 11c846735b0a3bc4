"""The accuracy guard: does a fast inference mode give the exact path's masks?

Both segmenters see the same images and the same reference boxes
(:func:`~medsam.evaluation.accuracy.case_predictions`). Per image, *agreement* is the
Dice between the two label maps (:func:`label_agreement`); per dataset, the median
DSC against the reference masks is computed for each. A mode passes when every image
agrees to at least :data:`medsam.precision.GUARD_AGREEMENT` and every dataset's median
DSC moves by at most :data:`medsam.precision.GUARD_DSC_POINTS` percentage points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..datasets.description import DatasetSpec
from ..precision import GUARD_AGREEMENT, GUARD_DSC_POINTS
from ..segmentation.segmenter import Segmenter2D
from .accuracy import case_predictions, score_labels


def label_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Dice between two label maps of the same shape: ``2 |a == b != 0| / (|a != 0| + |b != 0|)``.

    A voxel counts as shared only when both maps give it the same nonzero label. Both
    maps empty gives 1.0. Raises ValueError for different shapes.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} and {b.shape}")
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero((a == b) & (a != 0))) / total


@dataclass(frozen=True)
class AgreementRow:
    """One image (case and box setting): agreement of the fast mode's label map with the
    exact one, and each reference label's DSC under both (in the same order)."""

    dataset: str
    case: str
    setting: str
    agreement: float
    dsc_exact: tuple[float, ...]
    dsc_fast: tuple[float, ...]


@dataclass(frozen=True)
class GuardSummary:
    """One dataset: how many images, the lowest agreement, median DSC (0-1) under each
    mode, and whether the guard holds."""

    dataset: str
    images: int
    min_agreement: float
    median_dsc_exact: float
    median_dsc_fast: float

    @property
    def dsc_change_points(self) -> float:
        return 100.0 * (self.median_dsc_fast - self.median_dsc_exact)

    @property
    def passed(self) -> bool:
        return (self.min_agreement >= GUARD_AGREEMENT
                and abs(self.dsc_change_points) <= GUARD_DSC_POINTS)


def compare_modes(spec: DatasetSpec, exact: Segmenter2D, fast: Segmenter2D, settings: Sequence[str] = ("tight",),
                  max_cases: int | None = None, progress: bool = False) -> list[AgreementRow]:
    """Segment a dataset's cases (a :class:`~medsam.datasets.description.DatasetSpec`)
    with the ``exact`` and the ``fast`` segmenter from the same reference boxes; one
    :class:`AgreementRow` per case and box setting."""
    rows = []
    for case, geometry, setting, refs, (ref_map, fast_map) in case_predictions(
            spec, [exact, fast], settings, max_cases, progress=progress):
        rows.append(AgreementRow(
            spec.name, case, setting, label_agreement(ref_map, fast_map),
            tuple(r[1] for r in score_labels(ref_map, refs, geometry)),
            tuple(r[1] for r in score_labels(fast_map, refs, geometry))))
    return rows


def summarise(rows: Sequence[AgreementRow]) -> list[GuardSummary]:
    """A :class:`GuardSummary` per dataset, in the order the datasets first appear."""
    summaries = []
    for dataset in dict.fromkeys(r.dataset for r in rows):
        group = [r for r in rows if r.dataset == dataset]
        summaries.append(GuardSummary(
            dataset, len(group), min(r.agreement for r in group),
            float(np.median([d for r in group for d in r.dsc_exact])),
            float(np.median([d for r in group for d in r.dsc_fast]))))
    return summaries
