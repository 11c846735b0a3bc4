"""Evaluate a folder of predictions against a folder of references
(``medsam evaluate``).

Cases are matched by file name without extension (``case.nii.gz`` matches
``case.nrrd``); masks are read with :func:`medsam.io.read` (npz challenge files:
the ``segs`` array of a prediction, the ``gts`` array of a reference, spacing
from the file). Shapes and spacings must agree: a mismatch is an error naming
the case. Cases run in parallel processes with a progress bar; a case that
fails is reported with its error, never dropped silently.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..datasets.description import case_id
from ..errors import InputError, MedSAMError, as_failure
from ..io.geometry import Geometry
from ..io.values import binarise
from ..metrics.case import check_diagonal_pct, evaluate_labels
from ..segmentation.cases import case_name
from .results import ResultRow, rows_from_metrics

__all__ = ["EvaluateConfig", "EvaluationRun", "case_name", "list_cases", "match_cases", "load_mask", "evaluate_case",
           "evaluate_folders"]

@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """How to evaluate.

    ``labels``: labels to score (default: every nonzero label present in
    either mask). ``binary``: each mask must hold one foreground value (any
    nonzero value), scored as label 1. ``threshold``: foreground is
    ``value > threshold`` (for lossy masks such as JPEG), scored as label 1.
    ``tolerance``: NSD tolerance in mm (in pixels for images without a pixel size).
    ``diagonal_pct``: images without a pixel size get an NSD tolerance of this
    percentage of their diagonal instead (resolution-independent; None: off, the
    default). ``workers``: processes (default: CPU count, at most the number of
    cases; 1 runs in this process).
    ``spacing_rtol``: relative tolerance when comparing spacings.
    ``subset``: score the reference cases that have a prediction, and name the others in
    the run's notes (default: a reference case without a prediction is a failed case).
    """

    task: str = "task"
    method: str = "method"
    tolerance: float = 2.0
    labels: tuple[int, ...] | None = None
    binary: bool = False
    threshold: float | None = None
    workers: int | None = None
    spacing_rtol: float = 1e-4
    diagonal_pct: float | None = None
    subset: bool = False

    def __post_init__(self) -> None:
        from ..metrics.surface import check_tolerance

        try:
            check_tolerance(self.tolerance)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise InputError(f"threshold must be a finite number, got {self.threshold}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1, got {self.workers}")
        try:
            check_diagonal_pct(self.diagonal_pct)
        except ValueError as exc:
            raise InputError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class EvaluationRun:
    """Rows of the cases that succeeded and ``(case, error)`` of those that failed
    (each error names its case; :meth:`MedSAMError.render` words its hint);
    ``complete`` only when nothing failed. ``notes``: what a reader of the results should
    know (a reoriented prediction, reference cases left out by ``subset``)."""

    rows: list[ResultRow]
    failures: list[tuple[str, MedSAMError]]
    n_cases: int
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


def list_cases(folder: Path, role: str, pattern: re.Pattern | None = None) -> dict[str, Path]:
    """Case name -> mask file for the mask files of ``folder`` (hidden files and tables
    ignored). The name is :func:`~medsam.datasets.description.case_id` of the file's
    :func:`~medsam.segmentation.cases.case_name` and ``pattern`` (a file the pattern does
    not match is an InputError). ``role`` names the folder in
    messages (``prediction``, ``reference``, a rater's ``'A'``)."""
    from ..fileutil import existing_folder

    existing_folder(folder, f"{role} folder")
    from ..io import is_supported

    # masks only: a segmentation folder also holds tables (segment_times.csv, summaries)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and is_supported(p))
    cases: dict[str, Path] = {}
    for p in files:
        name = case_id(case_name(p), pattern, str(p))
        if name in cases:
            raise InputError(f"{folder}: two {role} files for case {name!r}: {cases[name].name} and {p.name}")
        cases[name] = p
    if not cases:
        raise InputError(f"{folder}: {role} folder holds no mask files")
    return cases


def match_cases(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike
                ) -> tuple[list[tuple[str, Path, Path]], list[tuple[str, MedSAMError]]]:
    """Pair prediction and reference files by case name.

    Returns the matched ``(case, pred, gt)`` triples and the unmatched cases as
    ``(case, error)`` failures. No match at all is an :class:`InputError`.
    """
    preds = list_cases(Path(pred_dir), "prediction")
    gts = list_cases(Path(gt_dir), "reference")
    matched = [(c, preds[c], gts[c]) for c in sorted(set(preds) & set(gts))]
    if not matched:
        raise InputError(f"no case names in common between {pred_dir} ({len(preds)} files) and "
                         f"{gt_dir} ({len(gts)} files)")
    unmatched: list[tuple[str, MedSAMError]] = [
        (c, InputError(f"case {c}: no prediction in {pred_dir}", option="subset"))
        for c in sorted(set(gts) - set(preds))]
    unmatched += [(c, InputError(f"case {c}: no reference in {gt_dir}")) for c in sorted(set(preds) - set(gts))]
    return matched, unmatched


def load_mask(path: Path, role: str) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Read a mask: ``(array, spacing or None)``; spacing is None when the file
    carries no physical size (PNG/JPEG)."""
    array, geometry, _ = load_mask_geometry(path, role)
    spacing = tuple(float(s) for s in geometry.spacing) if geometry.spacing_known else None
    return array, spacing


def load_mask_geometry(path: Path, role: str) -> tuple[np.ndarray, Geometry, bool]:
    """Read a mask: ``(array, Geometry, placed)``; ``placed`` is False for a challenge npz
    without ``origin``/``direction`` (it records only its spacing)."""
    from .. import io as mio

    if path.name.lower().endswith(".npz"):
        case = mio.read_npz(path, ("segs",) if role == "prediction" else ("gts",))
        array, geometry, placed = case.image, case.geometry, case.placed
        return array, geometry, placed
    array, geometry = mio.read(path)
    return array, geometry, True


def check_same_place(case: str, pred_geometry: Geometry, gt_geometry: Geometry, spacing_rtol: float = 1e-4,
                     placed: bool = True) -> None:
    """Raise InputError naming the case and the field unless both masks lie at the same
    place in the world: spacing (relative ``spacing_rtol``), origin (to 1% of the
    smallest voxel side) and direction (to 1e-3). Files without a physical pixel size
    (PNG, JPEG) are compared by shape only, files that record no placement
    (``placed`` False) by shape and spacing."""
    if not (pred_geometry.spacing_known and gt_geometry.spacing_known):
        return
    pred_s, gt_s = np.asarray(pred_geometry.spacing), np.asarray(gt_geometry.spacing)
    if not np.allclose(pred_s, gt_s, rtol=spacing_rtol, atol=0):
        raise InputError(f"case {case}: prediction spacing {tuple(pred_s.tolist())} differs from "
                         f"reference spacing {tuple(gt_s.tolist())} (mm, array axis order)")
    if not placed:
        return
    shift = float(np.linalg.norm(np.subtract(pred_geometry.origin, gt_geometry.origin)))
    if shift > 0.01 * float(gt_s.min()):
        raise InputError(f"case {case}: prediction origin {_fmt(pred_geometry.origin)} differs "
                         f"from reference origin {_fmt(gt_geometry.origin)} by {shift:.3g} mm; "
                         f"the masks are not aligned")
    turn = float(np.abs(np.subtract(pred_geometry.direction, gt_geometry.direction)).max())
    if turn > 1e-3:
        raise InputError(f"case {case}: prediction direction {_fmt(pred_geometry.direction)} "
                         f"differs from reference direction {_fmt(gt_geometry.direction)}; the "
                         f"masks are not aligned")


def check_labels_meet(case: str, pred: np.ndarray, gt: np.ndarray) -> None:
    """Raise InputError when both masks have foreground but share no label value (a
    reference stored as 255 and a prediction as 1 would score DSC 0 everywhere)."""
    pred_ids = set(np.unique(pred).tolist()) - {0}
    gt_ids = set(np.unique(gt).tolist()) - {0}
    if pred_ids and gt_ids and not pred_ids & gt_ids:
        raise InputError(f"case {case}: prediction labels {_ids(pred_ids)} and reference labels "
                         f"{_ids(gt_ids)} have no value in common (masks stored differently, e.g. "
                         f"1 and 255?)", option="binary")


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def _ids(ids: set) -> str:
    shown = sorted(ids)
    return "{" + ", ".join(map(str, shown[:6])) + (", ..." if len(shown) > 6 else "") + "}"


def _to_labels(array: np.ndarray, path: Path, config: EvaluateConfig) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.dtype == np.uint8:
        # an RGB(A) raster mask: accept only if it is grey
        if not all(np.array_equal(array[..., 0], array[..., c]) for c in (1, 2)):
            raise InputError(f"{path}: colour mask; masks must be grey label images")
        array = array[..., 0]
    if config.threshold is not None:
        return binarise(array, config.threshold, path).astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise InputError(f"{path}: mask holds non-integer values", option="threshold")
        array = array.astype(np.int64)
    elif array.dtype.kind == "b":
        array = array.astype(np.uint8)
    elif array.dtype.kind not in "iu":
        raise InputError(f"{path}: mask has unsupported data type {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError(f"{path}: mask holds negative values")
    if config.binary:
        values = np.unique(array)
        values = values[values != 0]
        if values.size > 1:
            shown = ", ".join(str(v) for v in values[:6]) + (" ..." if values.size > 6 else "")
            raise InputError(f"{path}: mask is not binary (foreground values {shown}); a label map "
                             f"cannot be scored as binary", option="threshold")
        return (array != 0).astype(np.uint8)
    return array


def _layout_text(order: tuple[int, ...], flipped: tuple[int, ...]) -> str:
    names = "zyx"[-len(order):]
    parts = []
    if order != tuple(range(len(order))):
        parts.append("permuted (" + ", ".join(names[k] for k in order) + ")")
    if flipped:
        parts.append("flipped along " + ", ".join(names[m] for m in flipped))
    return " and ".join(parts)


def evaluate_case(case: str, pred_path: Path, gt_path: Path, config: EvaluateConfig,
                  notes: list[str] | None = None) -> list[ResultRow]:
    """Rows of one case; raises :class:`InputError` naming the case for any
    problem with its files.

    A prediction on the reference's grid up to axis flips and permutations (the same voxels
    in the world: a NIfTI written from a DICOM series) is reoriented to the reference's
    layout and scored; ``notes`` gets a line saying so. Any other difference of grid is an
    error."""
    try:
        pred, pred_geometry, pred_placed = load_mask_geometry(pred_path, "prediction")
        gt, gt_geometry, gt_placed = load_mask_geometry(gt_path, "reference")
        pred, gt = _to_labels(pred, pred_path, config), _to_labels(gt, gt_path, config)
    except MedSAMError as exc:
        raise InputError(f"case {case}: {exc.message}", option=exc.option) from None
    layout = None
    if pred_placed and gt_placed and pred_geometry.spacing_known and gt_geometry.spacing_known:
        layout = pred_geometry.axes_onto(pred.shape, gt_geometry, gt.shape)
    if layout is not None and layout != (tuple(range(pred.ndim)), ()):
        order, flipped = layout
        pred = np.ascontiguousarray(np.flip(np.transpose(pred, order), flipped))
        pred_geometry = gt_geometry
        if notes is not None:
            notes.append(f"case {case}: the prediction's axes were {_layout_text(order, flipped)} to the "
                         f"reference's (the same voxels in the world), and scored so")
    pred_spacing = tuple(pred_geometry.spacing) if pred_geometry.spacing_known else None
    gt_spacing = tuple(gt_geometry.spacing) if gt_geometry.spacing_known else None
    if pred.shape != gt.shape:
        raise InputError(f"case {case}: prediction {pred_path.name} has shape {pred.shape}, "
                         f"reference {gt_path.name} has shape {gt.shape}")
    if pred.ndim not in (2, 3):
        raise InputError(f"case {case}: masks must be 2D or 3D, got shape {pred.shape}")
    check_same_place(case, pred_geometry, gt_geometry, config.spacing_rtol,
                     placed=pred_placed and gt_placed)
    if config.labels is None:
        check_labels_meet(case, pred, gt)
    spacing = gt_spacing or pred_spacing
    labels = (1,) if (config.binary or config.threshold is not None) and config.labels is None else config.labels
    metrics = evaluate_labels(pred, gt, spacing or (1.0,) * gt.ndim, labels=labels,
                              tolerance=config.tolerance, case=case, spacing_known=spacing is not None,
                              diagonal_pct=config.diagonal_pct)
    return rows_from_metrics(metrics, config.task, config.method)


def _run_one(args: tuple) -> tuple[str, list[ResultRow] | None, MedSAMError | None, list[str]]:
    case, pred_path, gt_path, config = args
    notes: list[str] = []
    try:
        return case, evaluate_case(case, pred_path, gt_path, config, notes), None, notes
    except Exception as exc:  # no failure of one case may stop the others, or be dropped
        return case, None, as_failure(exc, f"case {case}"), notes


def evaluate_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike,
                     config: EvaluateConfig = EvaluateConfig(), progress: bool = True) -> EvaluationRun:
    """Evaluate every matched case (see the module docstring)."""
    from ..progress import progress_bar

    matched, failures = match_cases(pred_dir, gt_dir)
    notes: list[str] = []
    if config.subset:
        unscored = [case for case, error in failures if "no prediction" in error.message]
        failures = [(case, error) for case, error in failures if case not in unscored]
        if unscored:
            notes.append(f"{len(unscored)} reference case(s) have no prediction and are not scored: "
                         + ", ".join(unscored[:10]) + (", ..." if len(unscored) > 10 else ""))
    n_cases = len(matched) + len(failures)
    jobs = [(c, p, g, config) for c, p, g in matched]
    workers = config.workers or min(os.cpu_count() or 1, len(jobs))
    results: dict[str, list[ResultRow]] = {}
    bar = progress_bar(total=len(jobs), desc="evaluate", unit="case", enabled=progress)
    try:
        if workers <= 1:
            for case, rows, error, case_notes in map(_run_one, jobs):
                _collect(case, rows, error, results, failures)
                notes += case_notes
                bar.update()
        else:
            with cf.ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_run_one, job) for job in jobs]
                for future in cf.as_completed(futures):
                    case, rows, error, case_notes = future.result()
                    _collect(case, rows, error, results, failures)
                    notes += case_notes
                    bar.update()
    finally:
        bar.close()
    rows = [r for case in sorted(results) for r in results[case]]
    return EvaluationRun(rows=rows, failures=sorted(failures, key=lambda f: f[0]), n_cases=n_cases,
                         notes=sorted(notes))


def _collect(case: str, rows: list[ResultRow] | None, error: MedSAMError | None,
             results: dict[str, list[ResultRow]], failures: list[tuple[str, MedSAMError]]) -> None:
    if rows is not None:
        results[case] = rows
    else:
        failures.append((case, error or MedSAMError(f"case {case}: failed")))
