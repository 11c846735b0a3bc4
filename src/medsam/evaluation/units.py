"""The unit of analysis: which rows of a result table count as independent cases.

A result table may hold several rows per image and label: objects scored one by one
(stardist's nuclei, case ``<image>#<object>``; see
:func:`~medsam.evaluation.results.object_case`). Objects of one image share its
acquisition, its staining and its annotator, so they are not independent cases: a test
that counts 125 nuclei of one image as 125 cases has n = 1 in truth.

* ``"image"`` (the default of every summary and test): one value per image or volume
  and label, the mean over its objects (:func:`by_image`), so n counts images;
* ``"object"``: every row as it is, a secondary analysis to be labelled as such.

Pooling over the tasks and labels of a dataset (the fine-tuning gain) goes one step
further: one value per task and image, the mean over its labels too
(:func:`pooled_by_image`), so an image with 14 organs counts once.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np

from ..errors import InputError
from .results import ResultRow

__all__ = ["UNITS", "UNIT_NAMES", "analysis_rows", "by_image", "check_unit", "has_objects",
           "objects_per_image", "pooled_by_image"]

#: the units of analysis, the default first
UNITS = ("image", "object")
#: how a table's n is headed for each unit
UNIT_NAMES = {"image": "images", "object": "objects"}


def check_unit(unit: str) -> str:
    """``unit`` if it is one of :data:`UNITS`, else an :class:`InputError`."""
    if unit not in UNITS:
        raise InputError(f"unknown unit of analysis {unit!r}; choose from {', '.join(UNITS)}")
    return unit


def _mean_row(rows: Sequence[ResultRow], label: int) -> ResultRow:
    """One row standing for ``rows`` (one method, task and image): DSC, NSD and HD95 are
    means (HD95 is ``inf`` when any is), voxel counts and volumes sums, the case is the
    image."""
    first = rows[0]
    if len(rows) == 1 and first.case == first.image and first.label == label:
        return first

    def mean(name: str) -> float:
        return float(np.mean([getattr(r, name) for r in rows]))

    tolerances = {r.nsd_tolerance for r in rows}
    return dataclasses.replace(
        first, case=first.image, label=label, dsc=mean("dsc"), nsd=mean("nsd"), hd95=mean("hd95"),
        gt_voxels=sum(r.gt_voxels for r in rows), pred_voxels=sum(r.pred_voxels for r in rows),
        gt_volume=sum(r.gt_volume for r in rows), pred_volume=sum(r.pred_volume for r in rows),
        nsd_tolerance=tolerances.pop() if len(tolerances) == 1 else math.nan)


def _grouped(rows: Iterable[ResultRow], key: Callable[[ResultRow], Hashable]) -> list[list[ResultRow]]:
    groups: dict[Hashable, list[ResultRow]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return list(groups.values())


def by_image(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """One row per (method, task, label, image): the mean over the image's objects (see
    :func:`_mean_row`); rows that are already one per image come back unchanged. Order:
    the first appearance of each group."""
    return [_mean_row(group, group[0].label)
            for group in _grouped(rows, lambda r: (r.method, r.task, r.label, r.image))]


def pooled_by_image(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """One row per (method, task, image), the mean over all its labels and objects, as
    label 0: the unit when tasks and labels are pooled."""
    return [_mean_row(group, 0) for group in _grouped(rows, lambda r: (r.method, r.task, r.image))]


def analysis_rows(rows: Iterable[ResultRow], unit: str = "image") -> list[ResultRow]:
    """The rows a summary or a test counts for ``unit`` (:data:`UNITS`)."""
    return by_image(rows) if check_unit(unit) == "image" else list(rows)


def objects_per_image(rows: Iterable[ResultRow]) -> dict[tuple[str, str, int], int]:
    """``{(method, task, label): the largest number of rows of one image}``."""
    counts: dict[tuple[str, str, int, str], int] = defaultdict(int)
    for r in rows:
        counts[(r.method, r.task, r.label, r.image)] += 1
    out: dict[tuple[str, str, int], int] = {}
    for (method, task, label, _), n in counts.items():
        out[(method, task, label)] = max(n, out.get((method, task, label), 0))
    return out


def has_objects(rows: Iterable[ResultRow]) -> bool:
    """Whether some image holds more than one row of a method, task and label (objects
    scored one by one), so that the two units differ."""
    return any(n > 1 for n in objects_per_image(rows).values())
