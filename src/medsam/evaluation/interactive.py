"""The CVPR 2025 interactive 3D challenge's protocol: a box, then five clicks, each step scored.

Written here from the challenge's description and its published evaluation rules:

* **Step 1, the box** (:func:`challenge_box`): per class, the object's first and last
  slice, its middle slice (the median of its voxels' slice indices), and the 2D box of
  the mask on that slice, each side moved out by a random 0-5 pixels scaled by the
  image size / 256 (a fixed seed, 2025 as in the challenge).
* **Steps 2-6, clicks** (:func:`next_click`): per class, the largest 26-connected
  component of the error (prediction != reference); the click goes to the voxel farthest
  from the component's border (the maximum of its Euclidean distance transform; ties
  broken by a seeded random choice), foreground where the object was missed, background
  where the prediction spilled. A class without error gets no click.
* **Scores** (:func:`score_step`): DSC and NSD (2 mm) per class per step; the AUC of DSC
  and NSD over the five click steps (trapezoid rule, unit spacing) and the final values.

A *driver* produces each step's label map from the prompts so far (:class:`Driver`):
:class:`SessionDriver` in this process, or :class:`ProcessDriver`, one ``medsam segment``
process per step on challenge npz files, as the challenge runs a container.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
from scipy import ndimage

from ..errors import MedSAMError
from ..io.npz import ChallengeBox

#: the challenge's seed for the box perturbation
BOX_SEED = 2025
#: the challenge's seed for ties between click positions
CLICK_SEED = 42
#: clicks after the box
N_CLICKS = 5


def challenge_box(mask: np.ndarray, rng: np.random.RandomState) -> ChallengeBox:
    """The challenge box of a non-empty ``(z, y, x)`` mask (see the module docstring);
    ``rng`` draws the shift (the challenge seeds numpy's legacy generator with 2025 and
    draws once per class, in class order)."""
    z, _, _ = np.nonzero(mask)
    z_min, z_max = int(z.min()), int(z.max())
    z_mid = int(np.sort(z)[len(z) // 2])
    ys, xs = np.nonzero(mask[z_mid])
    h, w = mask.shape[1:]
    shift = int(rng.randint(0, 6, 1)[0])
    sx, sy = int(shift * w / 256), int(shift * h / 256)
    return ChallengeBox(z_min, z_max, z_mid, max(0, int(xs.min()) - sx), max(0, int(ys.min()) - sy),
                        min(w - 1, int(xs.max()) + sx), min(h - 1, int(ys.max()) + sy))


def next_click(pred: np.ndarray, gt: np.ndarray, seed: int = CLICK_SEED) -> tuple[tuple[int, ...], bool] | None:
    """The challenge's next click for one class: ``((z, y, x), foreground)``, or None when
    ``pred`` equals ``gt`` (both ``(z, y, x)`` bool). The same rule in 2D: ``(y, x)``
    arrays give ``((y, x), foreground)`` (8-connected components)."""
    error = np.asarray(pred, bool) != np.asarray(gt, bool)
    if not error.any():
        return None
    parts, _ = ndimage.label(error, structure=np.ones((3,) * error.ndim, bool))
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    largest = parts == int(np.argmax(sizes))
    # the distance to the component's border; outside the array counts as border
    idx = np.argwhere(largest)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    pad = np.maximum(((hi - lo) * 0.25).astype(int), 1)
    crop = np.pad(largest[tuple(slice(a, b) for a, b in zip(lo, hi))], [(p, p) for p in pad])
    edt = ndimage.distance_transform_edt(crop)[tuple(slice(p, -p) for p in pad)]
    best = np.argwhere(edt == edt.max())
    choice = best[np.random.RandomState(seed).choice(len(best))] + lo
    center = tuple(int(v) for v in choice)
    return center, bool(gt[center])


def score_step(segs: np.ndarray, gt: np.ndarray, classes: Sequence[int], spacing: Sequence[float],
               tolerance: float = 2.0) -> dict[int, tuple[float, float]]:
    """``{class: (DSC, NSD)}`` of one step's label map; ``spacing`` in array order (mm)."""
    from ..metrics import dice, normalized_surface_distance

    out = {}
    for c in classes:
        p, g = segs == c, gt == c
        out[int(c)] = (dice(p, g), normalized_surface_distance(p, g, spacing, tolerance))
    return out


def auc(values: Sequence[float]) -> float:
    """Trapezoid area over the click steps (unit spacing), as the challenge's DSC_AUC."""
    v = np.asarray(values, dtype=float)
    return float(np.sum((v[1:] + v[:-1]) / 2.0)) if v.size > 1 else 0.0


class Driver(Protocol):
    """Produces a step's label map ``(z, y, x)`` (class ``i + 1`` for ``boxes[i]``) from the
    boxes and the clicks so far (per class ``{"fg": [[z, y, x], ...], "bg": [...]}``, with
    ``order`` per class ``["fg", "bg", ...]``) and the previous step's label map."""

    def start(self, image: np.ndarray, spacing_xyz: Sequence[float], name: str) -> None: ...

    def step(self, boxes: list[ChallengeBox], clicks: list[dict[str, list[list[int]]]],
             order: list[list[str]], prev_pred: np.ndarray | None) -> np.ndarray: ...


@dataclass(frozen=True)
class StepRow:
    """One class at one step: ``step`` 0 is the box, 1-5 the clicks."""

    dataset: str
    case: str
    label: int
    name: str
    step: int
    dsc: float
    nsd: float
    seconds: float
    click: str = ""


def run_case(driver: Driver, image: np.ndarray, gt: np.ndarray, spacing: Sequence[float],
             classes: Sequence[tuple[int, str]], dataset: str = "", case: str = "",
             n_clicks: int = N_CLICKS, seed: int = BOX_SEED) -> list[StepRow]:
    """Run the protocol on one volume: ``image`` ``(z, y, x)`` uint8 (as the model takes it),
    ``gt`` the reference label map, ``spacing`` ``(z, y, x)`` mm, ``classes`` the
    ``(label id, name)`` pairs to prompt (absent ones are skipped). The driver sees class
    ``i + 1`` for the i-th present class; rows carry the original label ids."""
    present = [(c, n) for c, n in classes if (gt == c).any()]
    if not present:
        return []
    rng = np.random.RandomState(seed)
    ref = np.zeros(gt.shape, np.uint8)
    for i, (c, _) in enumerate(present):
        ref[gt == c] = i + 1
    boxes = [challenge_box(ref == i + 1, rng) for i in range(len(present))]
    clicks: list[dict[str, list[list[int]]]] = [{"fg": [], "bg": []} for _ in present]
    order: list[list[str]] = [[] for _ in present]
    driver.start(image, tuple(spacing[::-1]), case)
    rows: list[StepRow] = []
    segs: np.ndarray | None = None
    ids = list(range(1, len(present) + 1))
    for step in range(n_clicks + 1):
        placed = [""] * len(present)
        if step > 0:
            assert segs is not None
            for i in range(len(present)):
                click = next_click(segs == i + 1, ref == i + 1)
                if click is None:
                    continue
                (z, y, x), fg = click
                kind = "fg" if fg else "bg"
                clicks[i][kind].append([z, y, x])
                order[i].append(kind)
                placed[i] = f"{kind} {x},{y},{z}"
        t0 = time.perf_counter()
        segs = np.asarray(driver.step(boxes, clicks, order, segs))
        seconds = time.perf_counter() - t0
        if segs.shape != gt.shape:
            raise ValueError(f"{case}: the driver returned segs of shape {segs.shape}, expected {gt.shape}")
        scores = score_step(segs, ref, ids, spacing)
        for i, (c, n) in enumerate(present):
            dsc, nsd = scores[i + 1]
            rows.append(StepRow(dataset, case, int(c), n, step, dsc, nsd, seconds, placed[i]))
    return rows


def object_summary(rows: Sequence[StepRow]) -> list[dict[str, Any]]:
    """Per object (dataset, case, label): DSC and NSD at each step, DSC_AUC / NSD_AUC over
    the click steps, final DSC / NSD, and the median seconds of a click step."""
    groups: dict[tuple[str, str, int], list[StepRow]] = {}
    for r in rows:
        groups.setdefault((r.dataset, r.case, r.label), []).append(r)
    out = []
    for (dataset, case, label), items in groups.items():
        items = sorted(items, key=lambda r: r.step)
        dsc = [r.dsc for r in items]
        nsd = [r.nsd for r in items]
        click_s = [r.seconds for r in items if r.step > 0]
        out.append({"dataset": dataset, "case": case, "label": label, "name": items[0].name,
                    "dsc": dsc, "nsd": nsd, "dsc_auc": auc(dsc[1:]), "nsd_auc": auc(nsd[1:]),
                    "dsc_final": dsc[-1], "nsd_final": nsd[-1],
                    "box_seconds": items[0].seconds,
                    "click_seconds": float(np.median(click_s)) if click_s else float("nan")})
    return out


def ordered_clicks(clicks: dict[str, list[list[int]]], order: Sequence[str]) -> list[tuple[tuple[int, int, int], bool]]:
    """One class's clicks in the order given: ``[((z, y, x), foreground), ...]`` from the
    challenge's ``{"fg": [...], "bg": [...]}`` and its ``clicks_order``."""
    taken = {"fg": 0, "bg": 0}
    out = []
    for kind in order:
        points = clicks.get(kind, [])
        if taken[kind] >= len(points):
            raise ValueError(f"clicks_order names {taken[kind] + 1} {kind} click(s) but there are {len(points)}")
        z, y, x = (int(v) for v in points[taken[kind]])
        taken[kind] += 1
        out.append(((z, y, x), kind == "fg"))
    return out


class SessionDriver:
    """Drives an :class:`~medsam.segmentation.session.InteractiveSession` in this process:
    the boxes once, then each new click (the embeddings stay in the segmenter's cache)."""

    def __init__(self, segmenter: Any, config: Any = None):
        from ..segmentation.propagation import DEFAULT_WALK

        self.segmenter = segmenter
        self.config = config or DEFAULT_WALK
        self.session: Any = None
        self._applied: list[int] = []

    def start(self, image: np.ndarray, spacing_xyz: Sequence[float], name: str) -> None:
        from ..io.geometry import Geometry
        from ..segmentation.session import InteractiveSession

        self.session = InteractiveSession(self.segmenter, self.config)
        self.session.load(image, Geometry(spacing=tuple(float(v) for v in spacing_xyz[::-1])))
        self._applied = []

    def step(self, boxes: list[ChallengeBox], clicks: list[dict[str, list[list[int]]]],
             order: list[list[str]], prev_pred: np.ndarray | None) -> np.ndarray:
        if not self._applied:
            for i, b in enumerate(boxes):
                self.session.add_box(i + 1, (b.x_min, b.y_min, b.x_max, b.y_max), key_slice=b.z_mid,
                                     z_range=(b.z_min, b.z_max))
            self._applied = [0] * len(boxes)
        for i in range(len(boxes)):
            for (z, y, x), fg in ordered_clicks(clicks[i], order[i])[self._applied[i]:]:
                self.session.add_click(i + 1, x, y, z, foreground=fg)
                self._applied[i] += 1
        return np.asarray(self.session.label_map())


class ProcessDriver:
    """One ``medsam segment CASE.npz -o OUT.npz`` process per step, on files laid out as the
    challenge's evaluation writes them (``imgs``, ``spacing``, ``boxes``, ``clicks``,
    ``clicks_order``, ``prev_pred``); the slice embeddings stay in the on-disk store between
    processes. ``options`` are extra ``medsam segment`` arguments (the model)."""

    def __init__(self, folder: Any, options: Sequence[str] = ()):
        from pathlib import Path

        self.folder = Path(folder)
        self.options = list(options)
        self._image: np.ndarray | None = None
        self._spacing: tuple[float, ...] = ()
        self._name = "case"

    def start(self, image: np.ndarray, spacing_xyz: Sequence[float], name: str) -> None:
        self._image, self._spacing, self._name = image, tuple(float(v) for v in spacing_xyz), name or "case"

    def step(self, boxes: list[ChallengeBox], clicks: list[dict[str, list[list[int]]]],
             order: list[list[str]], prev_pred: np.ndarray | None) -> np.ndarray:
        import subprocess
        import sys

        assert self._image is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        case = self.folder / f"{self._name}.npz"
        out = self.folder / f"{self._name}_segs.npz"
        arrays: dict[str, Any] = {"imgs": self._image, "spacing": np.asarray(self._spacing),
                                  "boxes": [b.to_dict() for b in boxes]}
        if prev_pred is not None:
            arrays.update(clicks=clicks, clicks_order=order, prev_pred=prev_pred)
        from ..fileutil import atomic_path

        with atomic_path(case) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        done = subprocess.run([sys.executable, "-m", "medsam", "segment", str(case), "-o", str(out),
                               "--overwrite", *self.options], capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"medsam segment failed on {case}: {lines[-1] if lines else done.returncode}")
        with np.load(out, allow_pickle=False) as result:
            return np.asarray(result["segs"])


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
    medians = _step_medians(objects)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(summary_markdown(objects), encoding="utf-8")
    paths = {"steps": out / "steps.csv", "objects": out / "objects.csv", "summary": out / "summary.md"}
    try:
        paths["plot"] = plot_dsc_by_click(objects, out / "dsc_by_click.png")
    except MedSAMError:  # no matplotlib: the tables only
        pass
    return {"paths": paths, "medians": medians, "objects": objects}


def _step_medians(objects: Sequence[dict[str, Any]]) -> list[float]:
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
    medians = _step_medians(objects)
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
        medians = _step_medians(group)
        ax.plot(range(len(medians)), medians, color=colour, linewidth=2.2, marker="o",
                label=f"{name} (n = {len(group)})")
    ax.set_xlabel("clicks after the box")
    ax.set_ylabel("DSC")
    ax.set_ylim(0, 1)
    ax.set_title("Interactive 3D: DSC after the box and each click (median per dataset)")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def choose_datasets(description: Any, datasets: Sequence[str] | None = None) -> list[Any]:
    """The description's datasets named in ``datasets`` (all when None).

    Raises:
        InputError: naming the datasets the description does not have.
    """
    from ..errors import InputError

    specs = list(description.datasets)
    if not datasets:
        return specs
    known = {s.name for s in specs}
    missing = [d for d in datasets if d not in known]
    if missing:
        raise InputError(f"{description.source or 'description'}: no dataset(s) {', '.join(missing)} "
                         f"(it has {', '.join(sorted(known))})")
    return [s for s in specs if s.name in datasets]


def dataset_jobs(description: Any, datasets: Sequence[str] | None = None, max_cases: int | None = None
                 ) -> list[tuple[Any, Any]]:
    """(dataset spec, case files) of the chosen datasets (:func:`choose_datasets`), at most
    ``max_cases`` per dataset: what a benchmark goes through."""
    from ..datasets.cases import find_dataset_cases

    jobs = []
    for spec in choose_datasets(description, datasets):
        files = find_dataset_cases(spec)
        jobs += [(spec, f) for f in (files[:max_cases] if max_cases else files)]
    return jobs


def run_description(description: Any, driver: Driver, datasets: Sequence[str] | None = None,
                    max_cases: int | None = None, n_clicks: int = N_CLICKS,
                    progress: bool = False) -> list[StepRow]:
    """The protocol on the 3D datasets of a dataset description (``medsam prepare``'s
    format; images with label maps, or npz files with ``gts``): each case's classes
    (``classes``, else every label present) are prompted together, as in the challenge.
    Intensities are prepared as the description says.

    Raises:
        InputError: a named dataset is not in the description, or none is 3D.
    """
    from ..datasets.cases import normalise, read_case, select_labels
    from ..errors import InputError
    from ..progress import progress_bar

    jobs = dataset_jobs(description, datasets, max_cases)
    rows: list[StepRow] = []
    volumes = 0
    for spec, files in progress_bar(jobs, desc="cases", unit="case", enabled=progress):
        image, labels, geometry = read_case(spec, files)
        if geometry.ndim != 3:
            continue
        volumes += 1
        labels = select_labels(spec, labels)
        names = dict(spec.classes) if spec.classes else {}
        classes = [(int(c), names.get(int(c), "")) for c in (sorted(names) or np.unique(labels)) if c]
        rows += run_case(driver, normalise(spec, image, geometry), labels, geometry.spacing, classes,
                         spec.name, files.case, n_clicks=n_clicks)
    if not volumes:
        raise InputError(f"{description.source or 'description'}: no 3D cases in the chosen datasets")
    return rows


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
    medians = {m: _step_medians([keyed[m][k] for k in keys]) for m in names}
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
