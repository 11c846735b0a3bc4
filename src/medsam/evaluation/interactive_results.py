"""Results of the interactive protocol (:mod:`.interactive`): the per-step CSV and the
per-object table, Markdown summaries, the DSC-by-click plot, and several models side by side."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import MedSAMError
from .interactive import StepRow, object_summary

__all__ = ["write_results", "step_medians", "summary_markdown", "plot_dsc_by_click", "compare_models"]


def write_results(rows: Sequence[StepRow], out_dir: Any) -> dict[str, Any]:
    """Write ``steps.csv`` (one row per object and step), ``objects.csv`` (per object: DSC
    per step, AUCs, finals, seconds), ``summary.md`` and, with matplotlib,
    ``dsc_by_click.png`` (median DSC against clicks, per dataset) into ``out_dir``.
    Returns the paths and the medians over objects per step."""
    from pathlib import Path

    from ..fileutil import atomic_path, write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "steps.csv", ["dataset", "case", "label", "name", "step", "dsc", "nsd", "seconds", "click"],
              [(r.dataset, r.case, r.label, r.name, r.step, round(r.dsc, 4), round(r.nsd, 4),
                round(r.seconds, 3), r.click) for r in rows])
    objects = object_summary(rows)
    steps = max((len(o["dsc"]) for o in objects), default=0)
    header = (["dataset", "case", "label", "name"] + [f"dsc_{i}" for i in range(steps)]
              + ["dsc_auc", "nsd_auc", "dsc_final", "nsd_final", "box_seconds", "click_seconds"])
    write_csv(out / "objects.csv", header, [
        [o["dataset"], o["case"], o["label"], o["name"]] + [round(v, 4) for v in o["dsc"]]
        + [""] * (steps - len(o["dsc"]))
        + [round(o[k], 4) for k in ("dsc_auc", "nsd_auc", "dsc_final", "nsd_final", "box_seconds",
                                    "click_seconds")] for o in objects])
    medians = step_medians(objects)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(objects), encoding="utf-8")
    paths = {"steps": out / "steps.csv", "objects": out / "objects.csv", "summary": out / "summary.md"}
    try:
        paths["plot"] = plot_dsc_by_click(objects, out / "dsc_by_click.png")
    except MedSAMError:  # no matplotlib: the tables only
        pass
    return {"paths": paths, "medians": medians, "objects": objects}


def step_medians(objects: Sequence[dict[str, Any]]) -> list[float]:
    """Median DSC over objects at each step (an object without errors left keeps its last)."""
    if not objects:
        return []
    steps = max(len(o["dsc"]) for o in objects)
    table = np.array([o["dsc"] + [o["dsc"][-1]] * (steps - len(o["dsc"])) for o in objects])
    return [float(v) for v in np.median(table, axis=0)]


def summary_markdown(objects: Sequence[dict[str, Any]]) -> str:
    """The per-object table (DSC % at the box and after each click, NSD final, AUCs,
    seconds) and the medians over objects, with n."""
    steps = max((len(o["dsc"]) for o in objects), default=1)
    head = ["dataset", "case", "object", "box"] + [f"+{i}" for i in range(1, steps)] + [
        "NSD final (2 mm)", "DSC_AUC", "s / click step"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for o in objects:
        dsc = o["dsc"] + [o["dsc"][-1]] * (steps - len(o["dsc"]))
        lines.append("| " + " | ".join([o["dataset"], o["case"], o["name"] or str(o["label"])]
                                        + [f"{100 * v:.1f}" for v in dsc]
                                        + [f"{100 * o['nsd_final']:.1f}", f"{o['dsc_auc']:.2f}",
                                           f"{o['click_seconds']:.2f}"]) + " |")
    medians = step_medians(objects)
    finals = [o["dsc"][-1] for o in objects]
    lines.append("")
    lines.append(f"Median DSC over n = {len(objects)} objects, by step (box, then clicks): "
                 + ", ".join(f"{100 * v:.1f}" for v in medians)
                 + (f"; worst final {100 * min(finals):.1f}" if finals else "") + ".")
    return "\n".join(lines) + "\n"


def plot_dsc_by_click(objects: Sequence[dict[str, Any]], path: Any) -> Any:
    """Median DSC against the number of clicks, one line per dataset (n objects in the
    legend), thin lines for the objects. Needs matplotlib."""
    from .plots import _COLORS as colours
    from .plots import _figure, _save

    fig, ax = _figure((6.5, 4.2), layout="constrained")
    datasets = sorted({o["dataset"] for o in objects})
    for i, name in enumerate(datasets):
        group = [o for o in objects if o["dataset"] == name]
        colour = colours[i % len(colours)]
        for o in group:
            ax.plot(range(len(o["dsc"])), o["dsc"], color=colour, alpha=0.25, linewidth=0.8)
        medians = step_medians(group)
        ax.plot(range(len(medians)), medians, color=colour, linewidth=2.2, marker="o",
                label=f"{name} (n = {len(group)})")
    ax.set_xlabel("clicks after the box")
    ax.set_ylabel("DSC")
    ax.set_ylim(0, 1)
    ax.set_title("Interactive 3D: DSC after the box and each click (median per dataset)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def compare_models(results: dict[str, Sequence[dict[str, Any]]], out_dir: Any) -> dict[str, Any]:
    """Several models' :func:`object_summary` results side by side: ``comparison.csv`` (one
    row per object and step, one DSC column per model) and ``comparison.md`` (per object the
    box step and the final DSC of each model, and the medians per step with n). Returns the
    paths and the medians per model."""
    from pathlib import Path

    from ..fileutil import atomic_path, write_csv

    out = Path(out_dir)
    names = list(results)
    keyed = {m: {(o["dataset"], o["case"], o["label"]): o for o in results[m]} for m in names}
    keys = [k for k in keyed[names[0]] if all(k in keyed[m] for m in names)]
    steps = max((len(o["dsc"]) for m in names for o in results[m]), default=1)

    def dsc(o: dict[str, Any], step: int) -> float:
        return float(o["dsc"][min(step, len(o["dsc"]) - 1)])

    rows = []
    for key in keys:
        first = keyed[names[0]][key]
        for step in range(steps):
            rows.append([*key, first["name"], step] + [round(dsc(keyed[m][key], step), 4) for m in names])
    write_csv(out / "comparison.csv", ["dataset", "case", "label", "name", "step"] + [f"dsc_{m}" for m in names],
              rows)
    head = ["dataset", "case", "object"] + [f"{m} box" for m in names] + [f"{m} +{steps - 1}" for m in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        first = keyed[names[0]][key]
        lines.append("| " + " | ".join([key[0], key[1], first["name"] or str(key[2])]
                                        + [f"{100 * dsc(keyed[m][key], 0):.1f}" for m in names]
                                        + [f"{100 * dsc(keyed[m][key], steps - 1):.1f}" for m in names]) + " |")
    medians = {m: step_medians([keyed[m][k] for k in keys]) for m in names}
    lines += ["", f"Median DSC over n = {len(keys)} objects, by step (box, then clicks):", ""]
    for m in names:
        finals = [dsc(keyed[m][k], steps - 1) for k in keys]
        falls = sum(b < a - 1e-9 for a, b in zip(medians[m], medians[m][1:]))
        lines.append(f"- {m}: " + ", ".join(f"{100 * v:.1f}" for v in medians[m])
                     + (f"; worst final {100 * min(finals):.1f}" if finals else "")
                     + f"; the median falls after {falls} click(s)")
    with atomic_path(out / "comparison.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"paths": {"csv": out / "comparison.csv", "markdown": out / "comparison.md"},
            "medians": medians}
