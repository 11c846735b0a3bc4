"""A click benchmark for 2D images: a box, then clicks by the challenge's rule, each step
scored.

The 2D counterpart of :mod:`medsam.evaluation.interactive`:

* **Objects**: the connected components (8-connected) of each reference label with at
  least the dataset's ``min_pixels`` pixels, as the accuracy evaluation takes them
  (:mod:`medsam.evaluation.accuracy`).
* **Step 0, the box**: the object's tight box, each side moved out by a random 0-5 pixels
  scaled by the image size / 256 (the challenge's box rule; seeded per case).
* **Steps 1..n, clicks**: the challenge's click rule applied in 2D
  (:func:`~medsam.evaluation.interactive.next_click`: the centre of the largest
  8-connected error component, foreground where the object was missed, background where
  the mask spilled). Each click goes through the library's 2D click path (the object's
  box and its clicks replayed in order, :class:`~medsam.segmentation.session.InteractiveSession`
  on a one-slice volume), as ``medsam segment`` applies clicks from a prompts file.
* **Scores**: DSC per object and step. An image's score is the mean over its objects,
  and a dataset's figure the median over its images, with n images: objects of one
  image are not independent cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics.overlap import dice
from ..prompt_geometry import index_box
from .interactive import BOX_SEED, next_click


@dataclass(frozen=True)
class ClickRow:
    """One object of one image at one step (0: the box; k: after k clicks)."""

    dataset: str
    case: str
    object: int
    step: int
    dsc: float


def _objects(labels: np.ndarray, min_pixels: int) -> list[np.ndarray]:
    from scipy import ndimage

    out = []
    for label in (int(v) for v in np.unique(labels) if v != 0):
        parts, n = ndimage.label(labels == label, structure=np.ones((3, 3), bool))
        out += [parts == i for i in range(1, n + 1) if (parts == i).sum() >= min_pixels]
    return out


def _challenge_box(mask: np.ndarray, rng: np.random.RandomState) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    shift = int(rng.randint(0, 6))
    sx, sy = int(shift * w / 256), int(shift * h / 256)
    return index_box(max(0, xs.min() - sx), max(0, ys.min() - sy), min(w - 1, xs.max() + sx),
                     min(h - 1, ys.max() + sy), (h, w))


def run_image(segmenter: Any, image: np.ndarray, labels: np.ndarray, min_pixels: int = 100,
              n_clicks: int = 5, dataset: str = "", case: str = "", seed: int = BOX_SEED) -> list[ClickRow]:
    """The protocol on one 2D ``image`` (``(H, W)`` or ``(H, W, 3)``, values 0..255 as the
    model takes them) with reference ``labels`` ``(H, W)``."""
    from ..io.geometry import Geometry
    from ..segmentation.session import InteractiveSession

    rng = np.random.RandomState(seed)
    rows: list[ClickRow] = []
    session = InteractiveSession(segmenter, max_undo=0)
    session.load(np.asarray(image), Geometry.default(2))
    for index, gt in enumerate(_objects(labels, min_pixels)):
        label = index + 1
        mask = session.add_box(label, _challenge_box(gt, rng))
        rows.append(ClickRow(dataset, case, label, 0, dice(mask, gt)))
        for step in range(1, n_clicks + 1):
            found = next_click(mask, gt)
            if found is not None:
                (y, x), foreground = found
                mask = session.add_click(label, float(x), float(y), 0, foreground)
            rows.append(ClickRow(dataset, case, label, step, dice(mask, gt)))
    return rows


def run_description(description: Any, segmenter: Any, datasets: Sequence[str] | None = None,
                    max_cases: int | None = None, n_clicks: int = 5, progress: bool = False) -> list[ClickRow]:
    """The protocol on the 2D cases of a dataset description (its ``cases`` lists, where
    given, choose held-out images). InputError when none of the chosen datasets is 2D."""
    from ..datasets.cases import read_case, select_labels
    from ..errors import InputError
    from ..intensity import prepare_intensities
    from ..progress import progress_bar
    from .interactive import dataset_jobs

    jobs = dataset_jobs(description, datasets, max_cases)
    rows: list[ClickRow] = []
    images = 0
    for spec, files in progress_bar(jobs, desc="images", unit="image", enabled=progress):
        image, raw, geometry = read_case(spec, files)
        if geometry.ndim != 2:
            continue
        images += 1
        intensity = spec.intensity
        prepared = prepare_intensities(image, geometry, None if intensity.mode == "none" else spec.modality,
                                       intensity.window, intensity.level, intensity.width)
        rows += run_image(segmenter, prepared, select_labels(spec, raw), spec.min_pixels, n_clicks,
                          spec.name, files.case)
    if not images:
        raise InputError(f"{description.source or 'description'}: no 2D images in the chosen datasets")
    return rows


def image_scores(rows: Sequence[ClickRow]) -> dict[tuple[str, str], list[float]]:
    """(dataset, case) -> the image's DSC per step (mean over its objects)."""
    table: dict[tuple[str, str], dict[int, list[float]]] = {}
    for r in rows:
        table.setdefault((r.dataset, r.case), {}).setdefault(r.step, []).append(r.dsc)
    return {key: [float(np.mean(steps[s])) for s in sorted(steps)] for key, steps in table.items()}


def dataset_medians(rows: Sequence[ClickRow]) -> dict[str, tuple[int, list[float]]]:
    """dataset -> (n images, median over its images of the DSC at each step)."""
    scores = image_scores(rows)
    out: dict[str, tuple[int, list[float]]] = {}
    for name in sorted({d for d, _ in scores}):
        table = np.array([v for (d, _), v in scores.items() if d == name])
        out[name] = (len(table), [float(v) for v in np.median(table, axis=0)])
    return out


def write_results(results: Mapping[str, Sequence[ClickRow]], out_dir: Any, steps_shown: Sequence[int] = (0, 1, 3, 5)
                  ) -> dict[str, Any]:
    """``clicks2d.csv`` (one row per model, object and step) and ``clicks2d.md`` (per
    dataset and model: n images and the median DSC after the box and after 1, 3 and 5
    clicks) for one or more models' rows."""
    from pathlib import Path

    from ..fileutil import atomic_path, write_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "clicks2d.csv", ["model", "dataset", "case", "object", "step", "dsc"],
              [(m, r.dataset, r.case, r.object, r.step, round(r.dsc, 4)) for m, rows in results.items()
               for r in rows])
    names = list(results)
    medians = {m: dataset_medians(results[m]) for m in names}
    shown = [s for s in steps_shown if all(s < len(v) for m in names for _, v in medians[m].values())]
    head = ["dataset", "n images"] + [f"{m} {'box' if s == 0 else f'+{s}'}" for m in names for s in shown]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset in sorted(set().union(*(set(medians[m]) for m in names))):
        n = medians[names[0]].get(dataset, (0, []))[0]
        cells = [f"{100 * medians[m][dataset][1][s]:.1f}" if dataset in medians[m] else "" for m in names
                 for s in shown]
        lines.append("| " + " | ".join([dataset, str(n)] + cells) + " |")
    lines += ["", "Median over each dataset's images of the image's mean DSC over its objects (%)."]
    with atomic_path(out / "clicks2d.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"paths": {"csv": out / "clicks2d.csv", "markdown": out / "clicks2d.md"}, "medians": medians}
