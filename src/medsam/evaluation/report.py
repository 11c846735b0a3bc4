"""A report folder (``medsam report``): summary tables, paired tests, box
plots and tumour-volume agreement, with ``index.html`` and ``index.md`` that
show everything.

Tables, tests and plots count the configured unit of analysis (:mod:`.units`; images
by default). When some image holds several objects and the unit is images, the
objects' summary and tests follow as a labelled secondary analysis
(``summary_objects.*``, ``comparison_objects.*``).

The folder is built in a temporary folder beside the destination and renamed
into place when complete, so a failed run never leaves a partial report.
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import InputError
from ..fileutil import atomic_folder, write_csv
from ..metrics.case import PERCENT_METRICS
from .compare import compare_methods, comparison_markdown, write_comparison
from .plots import box_plot
from .results import ResultRow
from .summary import metric_title, summarize, summary_markdown, tolerance_description, write_summary
from .units import UNIT_NAMES, analysis_rows, check_unit, has_objects
from .volumes import AGREEMENT_COLUMNS, volume_agreement, volume_pairs, write_agreement

__all__ = ["ReportConfig", "build_report", "group_name", "write_box_plots", "write_index"]


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Options of a report: the metrics to test and plot, the multiple-testing
    correction ("holm" or "bh"), the significance level, whether cases missing for
    some methods are allowed (then only common cases are tested), the baseline
    method tested against each other one (None: every pair), the correction's
    family ("run" or "task"; see :func:`~medsam.evaluation.compare.compare_methods`)
    and the unit of analysis ("image" or "object"; see :mod:`.units`)."""

    metrics: tuple[str, ...] = ("dsc", "nsd")
    correction: str = "holm"
    alpha: float = 0.05
    allow_missing: bool = False
    baseline: str | None = None
    family: str = "run"
    unit: str = "image"

    def __post_init__(self) -> None:
        check_unit(self.unit)


def group_name(task: str, label: int, labels_per_task: Mapping[str, set]) -> str:
    """``task`` alone when it has one label, else ``task:label``."""
    return task if len(labels_per_task.get(task, ())) == 1 else f"{task}:{label}"


def write_box_plots(tables: Mapping[str, Sequence[ResultRow]], metrics: Sequence[str],
                    folder: Path, unit: str = "image", suffix: str = "") -> list[str]:
    """``boxplot_<metric><suffix>.png`` in ``folder`` for each metric: one group of boxes
    per task (and label), one box per method (paper Fig. 2a,c), one value per ``unit``.
    The NSD plot names its tolerance: in the title when every group has the same one,
    else under each group's name. Returns the file names."""
    tables = {m: analysis_rows(rows, unit) for m, rows in tables.items()}
    all_rows = [r for rows in tables.values() for r in rows]
    labels_per_task: dict[str, set] = {}
    for r in all_rows:
        labels_per_task.setdefault(r.task, set()).add(r.label)
    groups = sorted({(r.task, r.label) for r in all_rows})
    tolerance = {g: tolerance_description(r for r in all_rows if (r.task, r.label) == g) for g in groups}
    one_tolerance = len(set(tolerance.values())) <= 1
    files = []
    for metric in metrics:
        def name(task: str, label: int) -> str:
            base = group_name(task, label, labels_per_task)
            return base if metric != "nsd" or one_tolerance else f"{base}\n({tolerance[(task, label)]})"

        scale = 100.0 if metric in PERCENT_METRICS else 1.0
        values: dict[tuple[str, str], list[float]] = {}
        for method, rows in tables.items():
            for r in rows:
                values.setdefault((name(r.task, r.label), method), []).append(getattr(r, metric) * scale)
        file = f"boxplot_{metric}{suffix}.png"
        title = f"{metric.upper()} per task and method, one value per {unit}"
        if metric == "nsd":
            title += f", tolerance {tolerance_description(all_rows)}" if one_tolerance else \
                ", tolerance under each task"
        ylabel = metric_title(metric, all_rows) if metric != "nsd" or one_tolerance else "NSD (%)"
        box_plot(values, [name(t, lab) for t, lab in groups], list(tables), ylabel, folder / file, title=title)
        files.append(file)
    return files


def build_report(tables: Mapping[str, Sequence[ResultRow]], out_dir: str | os.PathLike,
                 config: ReportConfig = ReportConfig(), overwrite: bool = False,
                 sources: Mapping[str, str] | None = None) -> Path:
    """Write the report for ``tables`` (method name -> result rows) into
    ``out_dir``; return the path of ``index.html``."""
    if not tables:
        raise InputError("report needs at least one result table")
    out_dir = Path(out_dir)
    methods = list(tables)
    all_rows = [r for rows in tables.values() for r in rows]
    sections: list[tuple[str, str, list[str]]] = []  # (title, markdown text, images)

    tolerance = tolerance_description(all_rows)
    units = [config.unit] + (["object"] if config.unit == "image" and has_objects(all_rows) else [])
    with atomic_folder(out_dir, overwrite) as tmp:
        for unit in units:
            sections += _unit_sections(tables, config, unit, tolerance, tmp, secondary=unit != config.unit)

        volume_lines, volume_images, volume_rows = [], [], []
        for method in methods:
            pred, ref = volume_pairs(analysis_rows(tables[method], config.unit))
            if pred.size < 4:
                continue
            try:
                agreement = volume_agreement(pred, ref)
            except ValueError as exc:
                volume_lines.append(f"- {method}: volume agreement not computed ({exc}).")
                continue
            volume_rows.append(agreement.row(method))
            volume_lines.append(f"- {method} (3D label volumes with a non-empty reference): "
                                f"{agreement.describe()}.")
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in method)
            write_agreement(pred, ref, agreement, tmp / f"volumes_{safe}.png",
                            tmp / f"bland_altman_{safe}.png", method=method)
            volume_images += [f"volumes_{safe}.png", f"bland_altman_{safe}.png"]
        if volume_rows:
            write_csv(tmp / "volume_agreement.csv", list(AGREEMENT_COLUMNS), volume_rows)
        if volume_lines:
            sections.append(("Tumour volumes", "\n".join(volume_lines) + "\n", volume_images))

        inputs = "\n".join(f"- {m}: {len(tables[m])} rows" + (f" from `{sources[m]}`" if sources else "")
                           for m in methods)
        write_index(tmp, "Evaluation report", [("Inputs", inputs, []), *sections])
    return out_dir / "index.html"


def _unit_sections(tables: Mapping[str, Sequence[ResultRow]], config: ReportConfig, unit: str,
                   tolerance: str, tmp: Path, secondary: bool) -> list[tuple[str, str, list[str]]]:
    """The summary, the tests and the box plots with ``unit`` as the unit of analysis;
    ``secondary``: files ``*_objects.*`` and titles that say what the analysis is."""
    suffix = "_objects" if secondary else ""
    caveat = ("Secondary analysis: every object counted as a case. Objects of one image are not "
              "independent, so these n overstate the evidence and the p-values are descriptive only.\n\n"
              if secondary else "")
    title = f" ({UNIT_NAMES[unit]} as units, secondary)" if secondary else ""
    sections: list[tuple[str, str, list[str]]] = []
    summary = summarize([r for rows in tables.values() for r in rows], unit=unit)
    write_summary(summary, tmp / f"summary{suffix}.csv", tmp / f"summary{suffix}.md")
    lead = "" if secondary else ("One value per image or volume and label (the mean over its objects, "
                                 "where an image holds several); n: images.\n\n" if unit == "image"
                                 else "Every object is a case; n: objects.\n\n")
    sections.append((f"Summary per task and label{title}", caveat + lead + summary_markdown(summary), []))
    if len(tables) > 1:
        comparison = compare_methods(tables, config.metrics, config.correction, config.alpha,
                                     config.allow_missing, config.baseline, config.family, unit)
        write_comparison(comparison, tmp / f"comparison{suffix}.csv", tmp / f"comparison{suffix}.md",
                         config.alpha, tolerance)
        sections.append((f"Paired comparison (Wilcoxon signed-rank){title}",
                         caveat + comparison_markdown(comparison, config.alpha, tolerance), []))
    images = write_box_plots(tables, config.metrics, tmp, unit, suffix)
    sections.append((f"Box plots{title}", f"Boxes: quartiles; line: median; whiskers: 1.5 IQR; one "
                     f"value per {unit}.\n", images))
    return sections


def _inline(text: str) -> str:
    """One line of our Markdown as HTML: escaped, with `code` and **bold**."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _md_table_to_html(text: str) -> str:
    out, in_table = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
        else:
            if in_table:
                out.append("</table>")
                in_table = False
            if line.startswith("- "):
                out.append(f"<p>&bull; {_inline(line[2:])}</p>")
            elif line.strip():
                out.append(f"<p>{_inline(line)}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def write_index(folder: Path, heading: str, sections: Sequence[tuple[str, str, list[str]]]) -> None:
    """``index.md`` and ``index.html`` in ``folder``: the ``heading``, then each section
    (title, Markdown text of paragraphs, bullets and tables, image paths relative to
    ``folder``), then a list of the folder's files."""
    md = [f"# {heading}", ""]
    body = [f"<h1>{html.escape(heading)}</h1>"]
    for title, text, images in sections:
        md += [f"## {title}", "", text]
        body += [f"<h2>{html.escape(title)}</h2>", _md_table_to_html(text)]
        for image in images:
            md += [f"![{image}]({image})", ""]
            body.append(f'<p><img src="{html.escape(image)}" alt="{html.escape(image)}"></p>')
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) + ["index.html", "index.md"]
    md += ["## Files", "", *(f"- [{f}]({f})" for f in files), ""]
    body += ["<h2>Files</h2>", "<ul>", *(f'<li><a href="{f}">{f}</a></li>' for f in files), "</ul>"]
    (folder / "index.md").write_text("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
             "table{border-collapse:collapse;font-size:90%;}td,th{border:1px solid #ccc;padding:3px 6px;}"
             "img{max-width:100%;}")
    (folder / "index.html").write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(heading)}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
