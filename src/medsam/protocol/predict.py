"""Every method on a dataset's evaluation cases with the same boxes, scored as
``medsam evaluate`` scores (DSC, NSD, HD95, volumes), and the raters' comparison.

Boxes come from the reference masks (:func:`~medsam.evaluation.accuracy.reference_prompts`:
one per 2D object, a 3D box or a key-slice box per 3D label), tight and with the paper's
0-20 px perturbation; all methods segment a case from the same boxes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Collection, Mapping, Sequence

import numpy as np

from ..datasets.description import DatasetSpec
from ..evaluation.accuracy import ReferencePrompts, case_predictions
from ..evaluation.experts import ExpertScore, compare_with_experts
from ..evaluation.results import ResultRow, object_case, rows_from_metrics
from ..io.geometry import Geometry
from ..metrics.case import evaluate_labels
from ..segmentation.segmenter import Segmenter2D


def reference_labels(predicted: np.ndarray, refs: ReferencePrompts) -> np.ndarray:
    """A prediction of prompt ids as a label map of the reference's labels (each label
    the union of its objects' masks)."""
    out = np.zeros(predicted.shape, dtype=refs.reference.dtype)
    for label, ids in refs.groups.items():
        out[np.isin(predicted, ids)] = label
    return out


def score(predicted: np.ndarray, refs: ReferencePrompts, geometry: Geometry, task: str,
          method: str, case: str, tolerance: float = 2.0, instances: bool = False,
          diagonal_pct: float | None = None) -> list[ResultRow]:
    """One result row per reference label that got a box. ``instances``: the labels are
    instances of one class (nuclei): each is scored as case ``<case>#<id>`` of label 1
    and image ``case`` (objects of one image: :mod:`medsam.evaluation.units`)."""
    metrics = evaluate_labels(reference_labels(predicted, refs), refs.reference, geometry.spacing,
                              labels=sorted(refs.groups), tolerance=tolerance, case=case,
                              spacing_known=geometry.spacing_known, diagonal_pct=diagonal_pct)
    rows = rows_from_metrics(metrics, task, method)
    if instances:
        rows = [replace(r, case=object_case(case, r.label), label=1, image=case) for r in rows]
    return rows


def evaluate_methods(spec: DatasetSpec, segmenters: Mapping[str, Segmenter2D], cases: Collection[str],
                     settings: Sequence[str], seed: int = 0, tolerance: float = 2.0,
                     progress: bool = False, diagonal_pct: float | None = None) -> dict[str, list[ResultRow]]:
    """Rows per box setting for every method of ``segmenters`` (name -> segmenter) on
    the ``cases`` of dataset ``spec``; the task is the dataset's name. A dataset without
    ``classes`` holds instance labels (one class; see :func:`score`). ``tolerance`` and
    ``diagonal_pct``: the NSD tolerance (:func:`~medsam.metrics.case.evaluate_labels`)."""
    names = list(segmenters)
    out: dict[str, list[ResultRow]] = {s: [] for s in settings}
    for case, geometry, setting, refs, predictions in case_predictions(
            spec, [segmenters[n] for n in names], settings, None, seed, progress, cases):
        for name, predicted in zip(names, predictions):
            out[setting] += score(predicted, refs, geometry, spec.name, name, case, tolerance,
                                  instances=spec.classes is None, diagonal_pct=diagonal_pct)
    return out


def rater_scores(spec: DatasetSpec, segmenter: Segmenter2D, model_name: str, max_cases: int | None = None,
                 tolerance: float = 2.0, progress: bool = False) -> list[ExpertScore]:
    """The model (tight boxes from the dataset's reference masks) against the dataset's
    raters (its ``raters`` masks, binarised at ``label_threshold``), every case; NSD in
    mm, or in pixels for images without a pixel size."""
    from ..datasets.cases import find_dataset_cases, rater_files
    from ..io import read

    threshold = spec.label_threshold if spec.label_threshold is not None else 0
    raters: dict[str, list[np.ndarray]] = {name: [] for name, _ in spec.raters or ()}
    files_of = {files.case: files for files in find_dataset_cases(spec)}
    model: list[np.ndarray] = []
    names: list[str] = []
    spacings: list[tuple[float, ...]] = []
    for case, geometry, _, refs, (predicted,) in case_predictions(
            spec, [segmenter], ("tight",), max_cases, progress=progress):
        for name, path in rater_files(spec, files_of[case]).items():
            mask, _ = read(path)
            mask = mask.max(axis=-1) if mask.ndim == 3 and mask.shape[-1] in (3, 4) else mask
            raters[name].append(np.asarray(mask) > threshold)
        model.append(reference_labels(predicted, refs) > 0)
        names.append(case)
        spacings.append(geometry.spacing if geometry.spacing_known else (1.0,) * geometry.ndim)
    return compare_with_experts(raters, names, spacings, model, model_name, tolerance)
