"""Plots for evaluation reports (matplotlib, optional extra ``plots``).

matplotlib is imported inside the functions. Figures are plain
:class:`matplotlib.figure.Figure` objects drawn on their own Agg canvas: pyplot is
never imported, so the caller's backend and open figures are left alone. Every
figure is written atomically as PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..errors import MedSAMError, install_hint
from ..fileutil import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class ExpertScore(Protocol):
    """What :func:`expert_figure` reads of a score (:class:`medsam.evaluation.experts.ExpertScore`;
    a protocol here, so that drawing does not import the experts' analysis)."""

    @property
    def participant(self) -> str: ...

    @property
    def reference(self) -> str: ...

    @property
    def dsc(self) -> float: ...

    @property
    def nsd(self) -> float: ...

__all__ = ["box_plot", "volume_scatter_plot", "bland_altman_plot", "expert_plot", "expert_figure"]

_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _figure(figsize: tuple[float, float], ncols: int = 1, layout: Literal["constrained"] | None = None,
            nrows: int = 1) -> tuple[Figure, Any]:
    """(a new Figure with its Agg canvas, its axes: one, or an array of ``nrows`` x
    ``ncols``); ``layout`` ``"constrained"`` keeps the axes' labels clear of each other."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MedSAMError(f"plots need matplotlib: {install_hint('plots')}") from None
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


#: groups per row of a box plot; more groups wrap onto further rows
BOX_PLOT_ROW = 10


def box_plot(values: Mapping[tuple[str, str], Sequence[float]], groups: Sequence[str],
             methods: Sequence[str], ylabel: str, path: str | os.PathLike,
             title: str | None = None) -> Path:
    """Grouped box plot (paper Fig. 2a,c): one group of boxes per task, one box
    per method, whiskers at 1.5 IQR; ``values[(group, method)]`` are the
    per-case values (non-finite values are left out). More than
    :data:`BOX_PLOT_ROW` groups wrap onto rows sharing the y axis."""
    rows = [list(groups[i:i + BOX_PLOT_ROW]) for i in range(0, max(len(groups), 1), BOX_PLOT_ROW)]
    per_row = max(len(r) for r in rows)
    width = max(5.0, 1.1 * per_row * max(1, len(methods)) * 0.6 + 2)
    fig, axes = _figure((width, 4.2 * len(rows)), nrows=len(rows), layout="constrained")
    axes = list(np.atleast_1d(axes))
    for ax, row in zip(axes, rows):
        _box_row(ax, values, row, methods, per_row)
        ax.set_ylabel(ylabel)
    top = [ax.get_ylim() for ax in axes]
    for ax in axes:
        ax.set_ylim(min(t[0] for t in top), max(t[1] for t in top))
    if title:
        axes[0].set_title(title)
    if len(methods) > 1:
        for j, method in enumerate(methods):
            axes[0].plot([], [], "s", color=_COLORS[j % len(_COLORS)], label=method)
        axes[0].legend(loc="best", fontsize=8)
    return _save(fig, path)


def _box_row(ax: Any, values: Mapping[tuple[str, str], Sequence[float]], groups: Sequence[str],
             methods: Sequence[str], slots: int) -> None:
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        data, positions = [], []
        for i, group in enumerate(groups):
            v = np.asarray(values.get((group, method), []), float)
            v = v[np.isfinite(v)]
            if v.size:
                data.append(v)
                positions.append(i + (j - (len(methods) - 1) / 2) * width)
        if not data:
            continue
        color = _COLORS[j % len(_COLORS)]
        ax.boxplot(data, positions=positions, widths=width * 0.85, patch_artist=True, whis=1.5,
                   boxprops={"facecolor": color, "alpha": 0.75}, medianprops={"color": "black"},
                   flierprops={"marker": ".", "markersize": 3})
    ax.set_xticks(range(len(groups)), groups, rotation=30 if len(groups) > 4 else 0,
                  ha="right" if len(groups) > 4 else "center")
    ax.set_xlim(-0.6, slots - 0.4)
    ax.grid(axis="y", alpha=0.3)


def volume_scatter_plot(predicted: ArrayLike, reference: ArrayLike, path: str | os.PathLike,
                        r: float | None = None, ci: tuple[float, float] | None = None,
                        unit: str = "mL", title: str | None = None) -> Path:
    """Predicted against reference volumes with the identity line."""
    p, ref = np.asarray(predicted, float), np.asarray(reference, float)
    fig, ax = _figure((4.8, 4.6))
    ax.scatter(ref, p, s=18, alpha=0.8, color=_COLORS[0], edgecolor="none")
    hi = float(max(p.max(initial=0), ref.max(initial=0))) * 1.05 or 1.0
    ax.plot([0, hi], [0, hi], "--", color="grey", lw=1, label="identity")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel(f"reference volume ({unit})")
    ax.set_ylabel(f"predicted volume ({unit})")
    text = f"n = {p.size}"
    if r is not None:
        text += f", Pearson r = {r:.3f}"
        if ci is not None:
            text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    ax.set_title(title or text, fontsize=9)
    if title:
        ax.text(0.03, 0.95, text, transform=ax.transAxes, fontsize=8, va="top")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def bland_altman_plot(predicted: ArrayLike, reference: ArrayLike, path: str | os.PathLike,
                      mean_difference: float, lower: float, upper: float, unit: str = "mL",
                      method: str = "") -> Path:
    """Difference (predicted - reference) against the mean of both, with the
    bias and the 95% limits of agreement; ``method`` names the predictions in the title."""
    p, ref = np.asarray(predicted, float), np.asarray(reference, float)
    mean, diff = (p + ref) / 2, p - ref
    fig, ax = _figure((5.6, 4.2))
    ax.scatter(mean, diff, s=18, alpha=0.8, color=_COLORS[0], edgecolor="none")
    lines = [(mean_difference, "-", f"bias {mean_difference:+.2f}"),
             (upper, "--", f"+1.96 SD {upper:+.2f}"), (lower, "--", f"-1.96 SD {lower:+.2f}")]
    if upper - lower <= 1e-9 * max(1.0, abs(mean_difference)):   # no spread: one line, one label
        lines = [(mean_difference, "-", f"bias {mean_difference:+.2f} (every difference equal)")]
    for y, style, label in lines:
        ax.axhline(y, linestyle=style, color=_COLORS[3] if style == "-" else "grey", lw=1)
        ax.annotate(label, (1.0, y), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                    textcoords="offset points", ha="right", fontsize=8)
    ax.set_xlabel(f"mean of predicted and reference ({unit})")
    ax.set_ylabel(f"predicted - reference ({unit})")
    ax.set_title(f"{method + ': ' if method else ''}Bland-Altman, n = {p.size}", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def expert_plot(scores: Sequence[ExpertScore], path: str | os.PathLike, model_name: str = "model") -> Path:
    """Write :func:`expert_figure` as PNG."""
    return _save(expert_figure(scores, model_name), path)


def expert_figure(scores: Sequence[ExpertScore], model_name: str = "model") -> Figure:
    """Box plots of DSC and NSD in %: each rater against the consensus of the other
    raters, next to the model against the same consensuses, and (with a model) the
    model against the consensus of all raters (paper Fig. 2f)."""
    raters = list(dict.fromkeys(s.participant for s in scores if s.participant != model_name))
    has_model = any(s.participant == model_name for s in scores)
    groups = [(name, f"consensus without {name}") for name in raters]
    if any(s.participant == model_name and s.reference == "consensus of all" for s in scores):
        groups.append(("all raters", "consensus of all"))
    fig, axes = _figure((max(6.5, 1.7 * len(groups) + 3.5), 4.2), ncols=2, layout="constrained")
    for ax, metric in zip(axes, ("dsc", "nsd")):
        data, positions, colors = [], [], []
        for i, (name, ref) in enumerate(groups):
            own = [100 * getattr(s, metric) for s in scores if s.participant == name and s.reference == ref]
            mod = [100 * getattr(s, metric) for s in scores if s.participant == model_name and s.reference == ref]
            for values, offset, color in ((own, -0.2, _COLORS[0]), (mod, 0.2, _COLORS[1])):
                if values:
                    data.append(values)
                    positions.append(i + (offset if own and mod else 0.0))
                    colors.append(color)
        parts = ax.boxplot(data, positions=positions, widths=0.35, patch_artist=True,
                           medianprops={"color": "black"}, flierprops={"marker": ".", "markersize": 3})
        for box, color in zip(parts["boxes"], colors):
            box.set_facecolor(color)
            box.set_alpha(0.75)
        ax.set_xticks(range(len(groups)), [name for name, _ in groups], fontsize=8,
                      rotation=30 if len(groups) > 6 else 0)
        ax.set_ylabel(f"{metric.upper()} (%)")
        ax.set_title(f"{metric.upper()} against the reference consensus", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        low = min((min(d) for d in data if len(d)), default=0.0)
        ax.set_ylim(max(0.0, math.floor(low / 10) * 10 - 5), 101)
    axes[0].plot([], [], "s", color=_COLORS[0], label="rater")
    if has_model:
        axes[0].plot([], [], "s", color=_COLORS[1], label=model_name)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Raters and model against the consensus of the other raters", fontsize=10)
    fig.supxlabel("reference: majority vote of the raters other than the one named"
                  + ("; \"all raters\": of every rater" if len(groups) > len(raters) else ""), fontsize=8)
    return fig
