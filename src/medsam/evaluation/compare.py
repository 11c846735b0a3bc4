"""Paired comparison of methods on the same cases (``medsam compare``).

For every task/label group, every pair of methods (or a baseline method against
each other one) and every metric, a two-sided Wilcoxon signed-rank test of the
per-case values, with the median of the paired differences, and p-values adjusted
for multiple testing (Holm-Bonferroni by default, or Benjamini-Hochberg) over all
tests of the run, or over the tests of each task (the paper's protocol): the family of
a task is every test of its labels, metrics and pairs of methods.

The cases paired are the unit of analysis (:mod:`.units`): images by default, the
mean over an image's objects, so 125 nuclei of one image are one pair and no test.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path, write_csv
from ..metrics.case import PERCENT_METRICS
from .results import ResultRow
from .stats import CORRECTION_NAMES, adjust_pvalues, paired_wilcoxon
from .units import UNIT_NAMES, analysis_rows, check_unit

__all__ = ["ComparisonRow", "compare_methods", "comparison_markdown", "write_comparison", "paired_values"]


@dataclasses.dataclass(frozen=True)
class ComparisonRow:
    """One paired test: ``method_a`` against ``method_b`` on ``metric`` for one
    task/label, on ``n`` pairs of ``unit`` (``"image"`` or ``"object"``).
    ``median_difference`` is the median of per-case ``a - b``; ``p_adjusted`` uses
    ``correction`` over the ``family_size`` tests of its family (NaN p-values, tests
    that could not be made, do not count)."""

    task: str
    label: int
    metric: str
    method_a: str
    method_b: str
    n: int
    median_a: float
    median_b: float
    median_difference: float
    statistic: float
    pvalue: float
    p_adjusted: float
    correction: str
    significant: bool
    unit: str = "image"
    family_size: int = 0


def paired_values(tables: Mapping[str, Sequence[ResultRow]], allow_missing: bool = False
                  ) -> dict[tuple[str, int], dict[str, dict[str, ResultRow]]]:
    """``{(task, label): {method: {case: row}}}`` restricted to the cases every
    method has. Unless ``allow_missing``, a case present for one method and
    absent for another is an :class:`InputError` naming it."""
    groups: dict[tuple[str, int], dict[str, dict[str, ResultRow]]] = defaultdict(dict)
    for method, rows in tables.items():
        for r in rows:
            groups[(r.task, r.label)].setdefault(method, {})[r.case] = r
    for (task, label), by_method in groups.items():
        missing_methods = [m for m in tables if m not in by_method]
        if missing_methods and not allow_missing:
            raise InputError(f"task {task!r} label {label}: no results for method(s) {', '.join(missing_methods)}")
        all_cases = set().union(*(set(v) for v in by_method.values()))
        common = set.intersection(*(set(v) for v in by_method.values())) if by_method else set()
        if common != all_cases and not allow_missing:
            for method, cases in by_method.items():
                lacking = sorted(all_cases - set(cases))
                if lacking:
                    shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
                    raise InputError(
                        f"task {task!r} label {label}: method {method!r} has no result for "
                        f"{len(lacking)} case(s): {shown}", option="allow_missing")
        for method in by_method:
            by_method[method] = {c: by_method[method][c] for c in sorted(common)}
    return dict(groups)


FAMILIES = ("run", "task")


def compare_methods(tables: Mapping[str, Sequence[ResultRow]], metrics: Sequence[str] = ("dsc", "nsd"),
                    correction: str = "holm", alpha: float = 0.05,
                    allow_missing: bool = False, baseline: str | None = None,
                    family: str = "run", unit: str = "image") -> list[ComparisonRow]:
    """Wilcoxon tests for every group, pair of methods (in the given order; with
    ``baseline``, that method against each other one) and metric, pairing the
    ``unit`` (:func:`~medsam.evaluation.units.analysis_rows`). ``family``: the
    tests the correction runs over, ``"run"`` (all) or ``"task"`` (each task's).
    Needs at least two methods."""
    if len(tables) < 2:
        raise InputError("comparison needs result tables of at least two methods")
    if correction not in CORRECTION_NAMES:
        raise InputError(f"unknown correction {correction!r}; choose from {', '.join(CORRECTION_NAMES)}")
    if baseline is not None and baseline not in tables:
        raise InputError(f"baseline method {baseline!r} is not among {', '.join(tables)}")
    if family not in FAMILIES:
        raise InputError(f"unknown test family {family!r}; choose from {', '.join(FAMILIES)}")
    check_unit(unit)
    groups = paired_values({m: analysis_rows(rows, unit) for m, rows in tables.items()}, allow_missing)
    raw = []
    for (task, label), by_method in sorted(groups.items()):
        methods = [m for m in tables if m in by_method]
        pairs = list(itertools.combinations(methods, 2)) if baseline is None else \
            [(baseline, m) for m in methods if m != baseline and baseline in by_method]
        for a, b in pairs:
            for metric in metrics:
                va = np.array([getattr(r, metric) for r in by_method[a].values()], float)
                vb = np.array([getattr(r, metric) for r in by_method[b].values()], float)
                test = paired_wilcoxon(va, vb)
                raw.append((task, label, metric, a, b, test, _median(va), _median(vb)))
    adjusted = np.zeros(len(raw))
    sizes = np.zeros(len(raw), int)
    keys = [r[0] if family == "task" else "" for r in raw]
    for key in dict.fromkeys(keys):
        index = [i for i, k in enumerate(keys) if k == key]
        pvalues = [raw[i][5].pvalue for i in index]
        adjusted[index] = adjust_pvalues(pvalues, correction)
        sizes[index] = sum(not math.isnan(p) for p in pvalues)
    name = CORRECTION_NAMES[correction] + (" per task" if family == "task" else "")
    return [
        ComparisonRow(task, label, metric, a, b, t.n, ma, mb, t.median_difference, t.statistic,
                      t.pvalue, float(p), name, bool(p < alpha), unit, int(size))
        for (task, label, metric, a, b, t, ma, mb), p, size in zip(raw, adjusted, sizes)
    ]


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def comparison_markdown(rows: Sequence[ComparisonRow], alpha: float = 0.05,
                        nsd_tolerance: str | None = None) -> str:
    """Markdown table of the tests, naming the test, the unit paired, the correction
    and its family (the ``family`` column: how many tests it holds); ``nsd_tolerance``
    (words with a unit) is stated for the NSD rows."""
    correction = rows[0].correction if rows else "none"
    unit = UNIT_NAMES[rows[0].unit] if rows else "images"
    tested = sum(not math.isnan(r.pvalue) for r in rows)
    scope = f"over all {tested} tests made (one family)"
    if correction.endswith(" per task"):
        correction = correction[: -len(" per task")]
        scope = (f"within each task: a task's family is every test made on it (its labels x metrics "
                 f"x pairs of methods; the family column counts them), {tested} tests in all")
    nsd = f" NSD at a tolerance of {nsd_tolerance}." if nsd_tolerance else ""
    lines = [
        f"Two-sided Wilcoxon signed-rank tests on paired {unit} (n: {unit}); p-values adjusted "
        f"with {correction} {scope}; * marks adjusted p < {alpha}; n/a: no test (fewer than 2 "
        f"pairs, or no difference).{nsd}",
        "",
        "| task | label | metric | A | B | n | median A | median B | median A-B | p | p adjusted | family |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = 100.0 if r.metric in PERCENT_METRICS else 1.0
        star = " *" if r.significant else ""
        lines.append(
            f"| {r.task} | {r.label} | {r.metric} | {r.method_a} | {r.method_b} | {r.n} | "
            f"{r.median_a * k:.2f} | {r.median_b * k:.2f} | {r.median_difference * k:+.2f} | "
            f"{_p(r.pvalue)} | {_p(r.p_adjusted)}{star} | {r.family_size} |")
    return "\n".join(lines) + "\n"


def write_comparison(rows: Sequence[ComparisonRow], csv_path: str | os.PathLike,
                     md_path: str | os.PathLike | None = None, alpha: float = 0.05,
                     nsd_tolerance: str | None = None) -> list[Path]:
    """The tests as CSV (every field of :class:`ComparisonRow`) and optionally Markdown."""
    fields = [f.name for f in dataclasses.fields(ComparisonRow)]
    written = [write_csv(csv_path, fields, ([getattr(r, f) for f in fields] for r in rows))]
    if md_path is not None:
        with atomic_path(md_path) as tmp:
            Path(tmp).write_text(comparison_markdown(rows, alpha, nsd_tolerance))
        written.append(Path(md_path))
    return written
