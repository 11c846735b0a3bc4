"""Summary tables per task and label: median (IQR), mean and n of each metric,
as in the MedSAM paper's tables, written as CSV and Markdown.

n counts the unit of analysis (:mod:`.units`): images by default, an image's objects
averaged into one value; the number of rows (objects) is reported beside it."""

from __future__ import annotations

import dataclasses
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from ..fileutil import atomic_path, write_csv
from ..metrics.case import (
    METRIC_NAMES,
    PERCENT_METRICS,
    CaseMetrics,
    MetricAccumulator,
    MetricSummary,
    length_unit,
)
from .results import ResultRow
from .units import UNIT_NAMES, analysis_rows

__all__ = ["SummaryRow", "summarize", "tolerance_description", "summary_markdown", "write_summary", "format_metric",
           "metric_title"]


def tolerance_description(rows: Iterable[CaseMetrics]) -> str:
    """How a report words the NSD tolerance of ``rows`` in words, with its unit: ``"2 mm"``, ``"2 px"``,
    ``"0.5 % of the image diagonal"``; several rules are joined with ``" or "``;
    ``"not recorded"`` for rows without it."""
    rules: list[str] = []
    for r in rows:
        if r.nsd_diagonal_pct > 0:
            rule = f"{r.nsd_diagonal_pct:g} % of the image diagonal"
        elif math.isnan(r.nsd_tolerance):
            rule = "not recorded"
        else:
            rule = f"{r.nsd_tolerance:g} {r.length_unit}"
        if rule not in rules:
            rules.append(rule)
    return " or ".join(rules) or "not recorded"


METRIC_TITLES = {"dsc": "DSC (%)", "nsd": "NSD (%)", "hd95": "HD95 (mm)"}


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """Summary of one (method, task, label) group; ``metrics`` maps a metric
    name to its :class:`MetricSummary` over the group's ``n_cases`` units (``unit``:
    ``"image"`` or ``"object"``); ``n_objects`` counts the rows they came from."""

    method: str
    task: str
    label: int
    n_cases: int
    metrics: dict
    length_unit: str = "mm"
    unit: str = "image"
    n_objects: int = 0
    nsd_tolerance: str = "not recorded"


def nsd_title(tolerance: str) -> str:
    """The NSD title with its tolerance in words (:func:`tolerance_description`)."""
    return f"NSD (%, tolerance {tolerance})"


def metric_title(metric: str, rows: Iterable[ResultRow] = ()) -> str:
    """The title of ``metric`` with its unit; HD95 in px when ``rows`` come from images
    without a physical pixel size; NSD with the tolerance of ``rows``."""
    if metric == "nsd":
        return nsd_title(tolerance_description(rows))
    if metric != "hd95":
        return METRIC_TITLES.get(metric, metric)
    units = {length_unit(r.volume_unit) for r in rows} or {"mm"}
    return f"HD95 ({units.pop() if len(units) == 1 else 'mm or px'})"


def summarize(rows: Iterable[ResultRow], metrics: Sequence[str] = METRIC_NAMES,
              unit: str = "image") -> list[SummaryRow]:
    """Group rows by (method, task, label) and summarise each metric over the
    ``unit`` (:func:`~medsam.evaluation.units.analysis_rows`; one
    :class:`~medsam.metrics.MetricAccumulator` per method and task)."""
    rows = list(rows)
    objects: dict[tuple[str, str, int], int] = defaultdict(int)
    for r in rows:
        objects[(r.method, r.task, r.label)] += 1
    grouped: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for r in analysis_rows(rows, unit):
        grouped[(r.method, r.task)].append(r)
    out = []
    for (method, task), group in sorted(grouped.items(), key=lambda item: item[0]):
        accumulator = MetricAccumulator()
        accumulator.extend(group)
        for label, summaries in accumulator.summary(metrics).items():
            labelled = [r for r in group if r.label == label]
            units = {length_unit(r.volume_unit) for r in labelled}
            out.append(SummaryRow(method, task, label, len(labelled), summaries,
                                  units.pop() if len(units) == 1 else "mm or px", unit,
                                  objects[(method, task, label)], tolerance_description(labelled)))
    return out


def format_metric(name: str, s: MetricSummary) -> str:
    """``median (q1-q3)``, in % for DSC/NSD; ``n_inf`` appended for HD95 with
    empty masks."""
    if s.n == 0:
        text = "n/a"
    else:
        k, digits = (100.0, 1) if name in PERCENT_METRICS else (1.0, 2)
        text = f"{s.median * k:.{digits}f} ({s.q1 * k:.{digits}f}-{s.q3 * k:.{digits}f})"
    if s.n_infinite:
        text += f" [{s.n_infinite} inf]"
    return text


def summary_markdown(summary: Sequence[SummaryRow]) -> str:
    """Markdown table: one line per group, n (and the objects behind it where they
    differ), median (IQR) and mean per metric; the NSD tolerance in the NSD headers, or
    in a column of its own when the groups differ."""
    metrics = list(summary[0].metrics) if summary else list(METRIC_NAMES)
    units = {s.length_unit for s in summary} or {"mm"}
    unit = units.pop() if len(units) == 1 else None
    tolerances = list(dict.fromkeys(s.nsd_tolerance for s in summary))
    nsd = nsd_title(tolerances[0]) if len(tolerances) == 1 else "NSD (%)"
    titles = {**METRIC_TITLES, "nsd": nsd, "hd95": f"HD95 ({unit})" if unit else "HD95"}
    analysis = summary[0].unit if summary else "image"
    show_objects = any(s.n_objects != s.n_cases for s in summary)
    header = ["method", "task", "label", f"n ({UNIT_NAMES[analysis]})"] + (["objects"] if show_objects else [])
    if "nsd" in metrics and len(tolerances) > 1:
        header.append("NSD tolerance")
    for m in metrics:
        header += [f"{titles.get(m, m)} median (IQR)", f"{titles.get(m, m)} mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summary:
        cells = [s.method, s.task, str(s.label), str(s.n_cases)] + ([str(s.n_objects)] if show_objects else [])
        if "nsd" in metrics and len(tolerances) > 1:
            cells.append(s.nsd_tolerance)
        for m in metrics:
            v = s.metrics[m]
            k = 100.0 if m in PERCENT_METRICS else 1.0
            suffix = f" {s.length_unit}" if (unit is None and m == "hd95") else ""
            cells += [format_metric(m, v) + suffix, "n/a" if v.n == 0 else f"{v.mean * k:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(summary: Sequence[SummaryRow], csv_path: str | os.PathLike,
                  md_path: str | os.PathLike | None = None) -> list[Path]:
    """Write the summary as CSV (raw fractions; distances in ``length_unit``; ``n_cases``
    counts units of ``unit``) and optionally Markdown."""
    metrics = list(summary[0].metrics) if summary else list(METRIC_NAMES)
    header = ["method", "task", "label", "unit", "n_cases", "n_objects", "length_unit", "nsd_tolerance"]
    for m in metrics:
        header += [f"{m}_median", f"{m}_q1", f"{m}_q3", f"{m}_mean", f"{m}_n", f"{m}_n_inf"]
    rows = []
    for s in summary:
        row = [s.method, s.task, s.label, s.unit, s.n_cases, s.n_objects, s.length_unit, s.nsd_tolerance]
        for m in metrics:
            v = s.metrics[m]
            row += [v.median, v.q1, v.q3, v.mean, v.n, v.n_infinite]
        rows.append(row)
    written = [write_csv(csv_path, header, rows)]
    if md_path is not None:
        with atomic_path(md_path) as tmp:
            Path(tmp).write_text(summary_markdown(summary))
        written.append(Path(md_path))
    return written
