"""Summary tables per task and label: median (IQR), mean and n of each metric,
as in the MedSAM paper's tables, written as CSV and Markdown."""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

from ..fileutil import atomic_path, write_csv
from ..metrics.case import METRIC_NAMES, PERCENT_METRICS, MetricAccumulator, MetricSummary, length_unit
from .results import ResultRow

__all__ = ["SummaryRow", "summarize", "summary_markdown", "write_summary", "format_metric", "metric_title"]

METRIC_TITLES = {"dsc": "DSC (%)", "nsd": "NSD (%)", "hd95": "HD95 (mm)"}


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """Summary of one (method, task, label) group; ``metrics`` maps a metric
    name to its :class:`MetricSummary` over the group's cases."""

    method: str
    task: str
    label: int
    n_cases: int
    metrics: dict
    length_unit: str = "mm"


def metric_title(metric: str, rows: Iterable[ResultRow] = ()) -> str:
    """The title of ``metric`` with its unit; HD95 in px when ``rows`` come from images
    without a physical pixel size."""
    if metric != "hd95":
        return METRIC_TITLES.get(metric, metric)
    units = {length_unit(r.volume_unit) for r in rows} or {"mm"}
    return f"HD95 ({units.pop() if len(units) == 1 else 'mm or px'})"


def summarize(rows: Iterable[ResultRow], metrics: Sequence[str] = METRIC_NAMES) -> list[SummaryRow]:
    """Group rows by (method, task, label) and summarise each metric (one
    :class:`~medsam.metrics.MetricAccumulator` per method and task)."""
    grouped: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for r in rows:
        grouped[(r.method, r.task)].append(r)
    out = []
    for (method, task), group in sorted(grouped.items(), key=lambda item: item[0]):
        accumulator = MetricAccumulator()
        accumulator.extend(group)
        for label, summaries in accumulator.summary(metrics).items():
            labelled = [r for r in group if r.label == label]
            units = {length_unit(r.volume_unit) for r in labelled}
            out.append(SummaryRow(method, task, label, len(labelled), summaries,
                                  units.pop() if len(units) == 1 else "mm or px"))
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
    """Markdown table: one line per group, median (IQR) and mean per metric."""
    metrics = list(summary[0].metrics) if summary else list(METRIC_NAMES)
    units = {s.length_unit for s in summary} or {"mm"}
    unit = units.pop() if len(units) == 1 else None
    titles = {**METRIC_TITLES, "hd95": f"HD95 ({unit})" if unit else "HD95"}
    header = ["method", "task", "label", "n"]
    for m in metrics:
        header += [f"{titles.get(m, m)} median (IQR)", f"{titles.get(m, m)} mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summary:
        cells = [s.method, s.task, str(s.label), str(s.n_cases)]
        for m in metrics:
            v = s.metrics[m]
            k = 100.0 if m in PERCENT_METRICS else 1.0
            suffix = f" {s.length_unit}" if (unit is None and m == "hd95") else ""
            cells += [format_metric(m, v) + suffix, "n/a" if v.n == 0 else f"{v.mean * k:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(summary: Sequence[SummaryRow], csv_path: str | os.PathLike,
                  md_path: str | os.PathLike | None = None) -> list[Path]:
    """Write the summary as CSV (raw fractions; distances in ``length_unit``) and
    optionally Markdown."""
    metrics = list(summary[0].metrics) if summary else list(METRIC_NAMES)
    header = ["method", "task", "label", "n_cases", "length_unit"]
    for m in metrics:
        header += [f"{m}_median", f"{m}_q1", f"{m}_q3", f"{m}_mean", f"{m}_n", f"{m}_n_inf"]
    rows = []
    for s in summary:
        row = [s.method, s.task, s.label, s.n_cases, s.length_unit]
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
