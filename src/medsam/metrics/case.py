"""Per-case, per-label evaluation and a small accumulator over cases.

:func:`evaluate_labels` turns one prediction/reference pair (label images,
2D (y, x) or 3D (z, y, x), spacing in mm in the same axis order) into one
:class:`CaseMetrics` per label. :class:`MetricAccumulator` collects them over
cases (in the style of MONAI's cumulative metrics) and reduces them to
per-label summaries.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Protocol, Sequence

import numpy as np

from .overlap import dice
from .surface import check_pair, hausdorff_distance, normalized_surface_distance, surface_distances
from .volumes import PIXEL_UNITS, volume_unit

__all__ = ["CaseMetrics", "MetricAccumulator", "MetricSummary", "evaluate_labels", "nsd_tolerance",
           "present_labels", "summarize_values", "METRIC_NAMES", "PERCENT_METRICS"]

METRIC_NAMES = ("dsc", "nsd", "hd95")
#: metrics in [0, 1], shown as percentages
PERCENT_METRICS = frozenset({"dsc", "nsd"})


@dataclasses.dataclass(frozen=True)
class CaseMetrics:
    """Metrics of one label in one case.

    ``gt_volume`` / ``pred_volume`` are in ``volume_unit``: millilitres for 3D
    masks, mm^2 (area) for 2D masks; ``"voxels"`` / ``"pixels"`` (counts) when the
    images had no physical pixel size. ``hd95`` is in mm, or in pixels with those
    units (``inf`` when exactly one mask is empty); see :attr:`length_unit`.
    """

    case: str
    label: int
    dsc: float
    nsd: float
    hd95: float
    gt_voxels: int
    pred_voxels: int
    gt_volume: float
    pred_volume: float
    volume_unit: str
    nsd_tolerance: float = math.nan
    nsd_diagonal_pct: float = 0.0

    @property
    def length_unit(self) -> str:
        """``"mm"``, or ``"px"`` when the spacing was unknown (NSD tolerance, HD95)."""
        return length_unit(self.volume_unit)


def check_diagonal_pct(value: float | None) -> None:
    """ValueError unless ``value`` is None or a share of the diagonal in (0, 100] %."""
    if value is not None and not 0 < value <= 100:
        raise ValueError(f"the NSD tolerance as a share of the diagonal must be in (0, 100] %, got {value}")


def nsd_tolerance(shape: Sequence[int], tolerance: float, spacing_known: bool,
                  diagonal_pct: float | None) -> float:
    """The NSD tolerance of an image of ``shape``: ``tolerance`` (mm, or pixels when the
    spacing is unknown), or, for an image without a pixel size and a ``diagonal_pct``,
    that percentage of its diagonal in pixels (the same share of the image at any
    resolution)."""
    if spacing_known or diagonal_pct is None:
        return float(tolerance)
    return diagonal_pct / 100.0 * math.sqrt(sum(n * n for n in shape))


def length_unit(volume_unit: str) -> str:
    """The unit of distances that goes with ``volume_unit``: ``"px"`` or ``"mm"``."""
    return "px" if volume_unit in PIXEL_UNITS else "mm"


def present_labels(*masks: np.ndarray) -> list[int]:
    """Sorted nonzero label values present in any of ``masks``."""
    values: set[int] = set()
    for m in masks:
        values.update(int(v) for v in np.unique(m))
    values.discard(0)
    return sorted(values)


def _label_boxes(mask: np.ndarray, labels: Sequence[int]) -> dict[int, tuple[slice, ...] | None]:
    """Bounding box slices of each label (None where absent), in one pass."""
    if not labels:
        return {}
    if mask.dtype.kind not in "iub" or (mask.size and mask.min() < 0):
        return {lab: tuple(slice(0, n) for n in mask.shape) for lab in labels}
    from scipy import ndimage  # here, not at import: `medsam segment` needs no scipy

    objects = ndimage.find_objects(mask.astype(np.int64, copy=False), max_label=max(labels))
    return {lab: objects[lab - 1] for lab in labels}


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def evaluate_labels(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None,
                    labels: Iterable[int] | None = None, tolerance: float = 2.0,
                    case: str = "", hd_percent: float = 95.0,
                    spacing_known: bool = True, diagonal_pct: float | None = None) -> list[CaseMetrics]:
    """DSC, NSD at ``tolerance`` mm, HD95 and volumes for each label.

    ``spacing_known`` False (images without a physical pixel size): the spacing is one
    pixel, the NSD tolerance and HD95 are in pixels and sizes are pixel counts. With
    ``diagonal_pct`` such an image's NSD tolerance is that percentage of its diagonal
    (in pixels) instead of ``tolerance`` pixels (:func:`nsd_tolerance`); images with a
    pixel size keep ``tolerance`` mm.

    ``pred`` and ``gt`` are integer label images of the same shape (binary
    masks are the label-1 case); ``labels`` defaults to every nonzero value
    present in either. A label absent from both gives DSC 1, NSD 1, HD95 0;
    absent from exactly one gives DSC 0, NSD 0, HD95 ``inf``.
    """
    spacing = check_pair(pred, gt, spacing)
    pred, gt = np.asarray(pred), np.asarray(gt)
    labels = present_labels(pred, gt) if labels is None else sorted(int(v) for v in labels)
    if any(lab <= 0 for lab in labels):
        raise ValueError(f"labels must be positive integers, got {labels}")
    boxes_pred, boxes_gt = _label_boxes(pred, labels), _label_boxes(gt, labels)
    unit_volume, unit = volume_unit(pred.ndim, spacing, spacing_known)
    if not spacing_known:
        spacing = (1.0,) * pred.ndim
    if diagonal_pct is not None and not 0 < diagonal_pct <= 100:
        raise ValueError(f"diagonal_pct must be in (0, 100], got {diagonal_pct}")
    tau = nsd_tolerance(pred.shape, tolerance, spacing_known, diagonal_pct)
    by_diagonal = 0.0 if spacing_known or diagonal_pct is None else float(diagonal_pct)
    rows = []
    for lab in labels:
        box = _union(boxes_pred[lab], boxes_gt[lab])
        if box is None:
            p = g = np.zeros((1,) * pred.ndim, bool)
        else:
            p, g = pred[box] == lab, gt[box] == lab
        sd = surface_distances(p, g, spacing)
        n_pred, n_gt = int(np.count_nonzero(p)), int(np.count_nonzero(g))
        rows.append(CaseMetrics(
            case=case, label=lab, dsc=dice(p, g),
            nsd=normalized_surface_distance(sd, tolerance=tau),
            hd95=hausdorff_distance(sd, percent=hd_percent),
            gt_voxels=n_gt, pred_voxels=n_pred,
            gt_volume=n_gt * unit_volume, pred_volume=n_pred * unit_volume, volume_unit=unit,
            nsd_tolerance=tau, nsd_diagonal_pct=by_diagonal,
        ))
    return rows


@dataclasses.dataclass(frozen=True)
class MetricSummary:
    """Summary of one metric over cases: median, quartiles, mean, n (finite values)."""

    median: float
    q1: float
    q3: float
    mean: float
    n: int
    n_infinite: int = 0


def summarize_values(values: Sequence[float]) -> MetricSummary:
    """Median, 25th/75th percentiles and mean of the finite ``values``; the
    number of infinite values (HD95 with one empty mask) is reported apart."""
    arr = np.asarray(list(values), dtype=float)
    finite = arr[np.isfinite(arr)]
    n_inf = int(np.isinf(arr).sum())
    if finite.size == 0:
        return MetricSummary(math.nan, math.nan, math.nan, math.nan, 0, n_inf)
    q1, med, q3 = np.percentile(finite, [25, 50, 75])
    return MetricSummary(float(med), float(q1), float(q3), float(finite.mean()), int(finite.size), n_inf)


class Scored(Protocol):
    """What the accumulator reads of a row: its label, and each metric as an attribute
    (:class:`CaseMetrics`, or an evaluation result row)."""

    @property
    def label(self) -> int: ...


class MetricAccumulator:
    """Collects :class:`CaseMetrics` (or result rows) over cases and reduces them per
    label; :func:`medsam.evaluation.summarize` uses one per method and task.

    >>> acc = MetricAccumulator()
    >>> acc.extend(evaluate_labels(pred, gt, spacing, case="c1"))   # doctest: +SKIP
    >>> acc.summary()[1]["dsc"].median                               # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._rows: list[Scored] = []

    def extend(self, rows: Iterable[Scored]) -> None:
        self._rows.extend(rows)

    def reset(self) -> None:
        self._rows.clear()

    @property
    def rows(self) -> list[Scored]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def summary(self, metrics: Sequence[str] = METRIC_NAMES) -> dict[int, dict[str, MetricSummary]]:
        """``{label: {metric: MetricSummary}}`` over all collected cases."""
        out: dict[int, dict[str, MetricSummary]] = {}
        for lab in sorted({r.label for r in self._rows}):
            rows = [r for r in self._rows if r.label == lab]
            out[lab] = {m: summarize_values([getattr(r, m) for r in rows]) for m in metrics}
        return out
