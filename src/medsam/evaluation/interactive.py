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

A *driver* produces each step's label map from the prompts so far (:class:`Driver`; the
drivers are in :mod:`.interactive_drivers`). :mod:`.interactive_results` writes and
summarises the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
from scipy import ndimage

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
