"""Comparison with human experts (MedSAM paper, Fig. 2f).

Several raters segment the same cases. The consensus is the voxel-wise
majority vote. Each rater is scored against the consensus of the *other*
raters (leave-one-out, so no rater is scored against itself), and the model is
scored against exactly the same leave-one-out consensuses, so each rater's
scores pair with the model's scores case by case. The model is also scored
against the consensus of all raters (the paper's ground truth).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..metrics.overlap import dice
from ..metrics.surface import normalized_surface_distance, surface_distances

__all__ = ["majority_vote", "ExpertScore", "compare_with_experts", "expert_table", "expert_markdown",
           "write_expert_comparison", "RaterMasks", "load_rater_masks"]


def majority_vote(masks: Sequence[np.ndarray], tie: str = "background") -> np.ndarray:
    """Voxel-wise majority of binary masks (nonzero = foreground), as bool.

    A voxel is foreground when more than half of the masks mark it; an exact
    tie (even number of masks) is background, or foreground with
    ``tie="foreground"``. One mask is its own consensus.
    """
    if not masks:
        raise ValueError("majority vote needs at least one mask")
    if tie not in ("background", "foreground"):
        raise ValueError(f"tie must be 'background' or 'foreground', got {tie!r}")
    shape = np.shape(masks[0])
    votes = np.zeros(shape, np.int32)
    for m in masks:
        if np.shape(m) != shape:
            raise ValueError(f"masks differ in shape: {np.shape(m)} and {shape}")
        votes += np.asarray(m) != 0
    n = len(masks)
    return votes * 2 > n if tie == "background" else votes * 2 >= n


@dataclasses.dataclass(frozen=True)
class ExpertScore:
    """One score: ``participant`` (a rater or the model) on ``case`` against
    ``reference`` ("consensus without <rater>" or "consensus of all")."""

    case: str
    participant: str
    reference: str
    dsc: float
    nsd: float


def _score(mask: np.ndarray, consensus: np.ndarray, spacing: Sequence[float] | None,
           tolerance: float) -> tuple[float, float]:
    d = surface_distances(mask, consensus, spacing)
    return dice(mask, consensus), normalized_surface_distance(d, tolerance=tolerance)


def compare_with_experts(raters: Mapping[str, Sequence[np.ndarray]], cases: Sequence[str],
                         spacings: Sequence[Sequence[float]] | None = None,
                         model: Sequence[np.ndarray] | None = None, model_name: str = "model",
                         tolerance: float = 2.0, tie: str = "background") -> list[ExpertScore]:
    """Leave-one-out scores of every rater, and the model's scores against the
    same consensuses and against the all-rater consensus.

    ``raters[name][i]`` is that rater's binary mask of ``cases[i]``;
    ``spacings[i]`` its spacing in mm, array axis order (default 1 mm);
    ``model[i]`` the model's mask. Needs at least two raters.
    """
    names = list(raters)
    if len(names) < 2:
        raise ValueError("expert comparison needs at least two raters")
    if model_name in raters:
        raise ValueError(f"model name {model_name!r} is also a rater name")
    n_cases = len(cases)
    for name in names:
        if len(raters[name]) != n_cases:
            raise ValueError(f"rater {name!r} has {len(raters[name])} masks for {n_cases} cases")
    if model is not None and len(model) != n_cases:
        raise ValueError(f"model has {len(model)} masks for {n_cases} cases")
    scores = []
    for i, case in enumerate(cases):
        spacing = None if spacings is None else spacings[i]
        for name in names:
            others = [raters[o][i] for o in names if o != name]
            consensus = majority_vote(others, tie)
            ref = f"consensus without {name}"
            scores.append(ExpertScore(case, name, ref, *_score(raters[name][i], consensus, spacing, tolerance)))
            if model is not None:
                scores.append(ExpertScore(case, model_name, ref, *_score(model[i], consensus, spacing, tolerance)))
        if model is not None:
            consensus = majority_vote([raters[n][i] for n in names], tie)
            scores.append(ExpertScore(case, model_name, "consensus of all",
                                      *_score(model[i], consensus, spacing, tolerance)))
    return scores


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if not len(values):
        return (float("nan"),) * 3
    q1, median, q3 = np.percentile(np.asarray(values, float), [25, 50, 75])
    return float(median), float(q1), float(q3)


def _cells(prefix: str, scores: Sequence[ExpertScore]) -> dict:
    """``<prefix>_dsc`` / ``_nsd`` medians with their ``_q1`` / ``_q3`` quartiles."""
    out: dict[str, float] = {}
    for metric in ("dsc", "nsd"):
        median, q1, q3 = _quartiles([getattr(s, metric) for s in scores])
        out |= {f"{prefix}_{metric}": median, f"{prefix}_{metric}_q1": q1, f"{prefix}_{metric}_q3": q3}
    return out


def expert_table(scores: Sequence[ExpertScore], model_name: str = "model") -> list[dict]:
    """One line per rater: the rater's median DSC/NSD (with quartiles, keys ``_q1`` and
    ``_q3``) against the leave-one-out consensus and the model's against the same
    consensuses; plus one line for the model against the all-rater consensus."""
    out = []
    raters = list(dict.fromkeys(s.participant for s in scores if s.participant != model_name))
    for name in raters:
        ref = f"consensus without {name}"
        own = [s for s in scores if s.participant == name and s.reference == ref]
        mod = [s for s in scores if s.participant == model_name and s.reference == ref]
        out.append({"rater": name, "reference": ref, "n": len(own), **_cells("rater", own), **_cells("model", mod)})
    full = [s for s in scores if s.participant == model_name and s.reference == "consensus of all"]
    if full:
        out.append({"rater": "(all raters)", "reference": "consensus of all", "n": len(full),
                    **_cells("rater", []), **_cells("model", full)})
    return out


#: the columns of ``experts.csv``
EXPERT_COLUMNS = ("rater", "reference", "n", *(f"{who}_{m}{q}" for who in ("rater", "model")
                                                for m in ("dsc", "nsd") for q in ("", "_q1", "_q3")))


def expert_markdown(table: Sequence[dict]) -> str:
    """The :func:`expert_table` as Markdown: DSC and NSD in %, median [IQR] over the
    cases (n)."""
    lines = ["| rater | reference | n | rater DSC | model DSC | rater NSD | model NSD |",
             "|---|---|---|---|---|---|---|"]

    def pct(row: dict, key: str) -> str:
        v = row[key]
        return "-" if v != v else f"{100 * v:.1f} [{100 * row[key + '_q1']:.1f}, {100 * row[key + '_q3']:.1f}]"

    for row in table:
        lines.append(f"| {row['rater']} | {row['reference']} | {row['n']} | {pct(row, 'rater_dsc')} | "
                     f"{pct(row, 'model_dsc')} | {pct(row, 'rater_nsd')} | {pct(row, 'model_nsd')} |")
    return "\n".join(lines) + "\n"


def write_expert_comparison(scores: Sequence[ExpertScore], folder: str | os.PathLike, model_name: str = "model",
                            plot: bool = True) -> list[Path]:
    """Write ``experts_scores.csv`` (every score), ``experts.csv`` and
    ``experts.md`` (the table) and ``experts.png`` (the plot) into ``folder``."""
    from ..fileutil import atomic_path, write_csv

    folder = Path(folder)
    table = expert_table(scores, model_name)
    fields = [f.name for f in dataclasses.fields(ExpertScore)]
    written = [write_csv(folder / "experts_scores.csv", fields, ([getattr(s, f) for f in fields] for s in scores))]
    written.append(write_csv(folder / "experts.csv", EXPERT_COLUMNS,
                             ([row[k] for k in EXPERT_COLUMNS] for row in table)))
    with atomic_path(folder / "experts.md") as tmp:
        tmp.write_text(expert_markdown(table))
    written.append(folder / "experts.md")
    if plot:
        from .plots import expert_plot

        written.append(expert_plot(scores, folder / "experts.png", model_name))
    return written


@dataclasses.dataclass(frozen=True)
class RaterMasks:
    """Binary masks of the cases every folder holds: ``masks[name][i]`` is the mask of
    ``cases[i]`` by rater (or model) ``name``; ``spacings[i]`` its pixel size (or None);
    ``missing[name]``: that folder's cases left out because another folder lacks them."""

    cases: list[str]
    masks: dict[str, list[np.ndarray]]
    spacings: list
    missing: dict[str, list[str]]


def _read_binary(path: Path, threshold: float) -> tuple[np.ndarray, object]:
    from ..io.values import binarise
    from .runner import load_mask

    array, spacing = load_mask(path, "reference")
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.dtype == np.uint8:
        array = array[..., 0]
    return binarise(array, threshold, path), spacing


def load_rater_masks(folders: Mapping[str, Path], pattern: re.Pattern | None = None,
                     threshold: float = 0.0) -> RaterMasks:
    """Read the masks (foreground: value > ``threshold``) of the cases present in every
    folder of ``folders`` (name -> folder), matched by case name."""
    from .runner import list_cases

    listed = {name: list_cases(Path(folder), f"'{name}'", pattern) for name, folder in folders.items()}
    cases = sorted(set.intersection(*(set(c) for c in listed.values())))
    if not cases:
        raise InputError("no case is present in every folder", option="case_pattern")
    missing = {name: sorted(set(c) - set(cases)) for name, c in listed.items() if set(c) - set(cases)}
    masks: dict[str, list[np.ndarray]] = {name: [] for name in listed}
    spacings = []
    for case in cases:
        shape, spacing_seen = None, None
        for name in listed:
            mask, spacing = _read_binary(listed[name][case], threshold)
            if shape is not None and mask.shape != shape:
                raise InputError(f"case {case}: {listed[name][case]} has shape {mask.shape}, "
                                 f"the other masks of this case {shape}")
            shape = mask.shape
            masks[name].append(mask)
            spacing_seen = spacing_seen or spacing
        spacings.append(spacing_seen)
    return RaterMasks(cases, masks, spacings, missing)
