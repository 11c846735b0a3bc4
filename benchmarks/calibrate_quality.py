"""Calibrate the quality signal: how often the warning flags a bad object, and a good one.

Every object of a dataset description (default ``examples/datasets/shared_data.json``) is
segmented from reference boxes (tight, and grown by the paper's 0-20 px at 1024), as
``benchmarks/bench_accuracy.py`` does, with the model's predicted IoU kept
(:mod:`medsam.segmentation.quality`). Each object's DSC against its own reference object is
paired with its predicted IoU and warnings. Printed: for each candidate threshold, the
share of bad objects (DSC < 50 %) it flags and the share of good ones (DSC >= 80 %) it
flags, with n objects and n images; then the warnings as shipped (``LOW_IOU`` and the 3D
walk checks). Every row goes to a CSV.

    python benchmarks/calibrate_quality.py                       # all datasets, ~15 min on 2 cores
    python benchmarks/calibrate_quality.py --datasets jsrt kvasir --max-cases 5
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from medsam import load_model
from medsam.datasets.description import load_description
from medsam.evaluation.accuracy import BOX_SETTINGS, reference_prompts
from medsam.metrics import dice
from medsam.segmentation import MedSAMSegmenter, segment
from medsam.segmentation.quality import LOW_IOU

ROOT = Path(__file__).resolve().parents[1]
BAD, GOOD = 0.50, 0.80


def objects_of(refs, ndim: int) -> dict[int, np.ndarray]:
    """Prompt id -> the reference object it was drawn from."""
    out = {}
    for label, ids in refs.groups.items():
        mask = refs.reference == label
        if ndim == 3:
            out[ids[0]] = mask
            continue
        parts, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        for i, pid in zip(range(1, count + 1), ids):
            out[pid] = parts == i
    return out


def run(args: argparse.Namespace) -> list[dict]:
    from medsam.datasets.cases import find_dataset_cases, read_case, select_labels
    from medsam.intensity import prepare_intensities
    from medsam.segmentation.embedding_store import configured_store

    description = load_description(args.description)
    segmenter = MedSAMSegmenter(load_model(args.weights), store=configured_store(requested=True))
    rows = []
    for spec in description.datasets:
        if args.datasets and spec.name not in args.datasets:
            continue
        start = time.perf_counter()
        for index, files in enumerate(find_dataset_cases(spec)[:args.max_cases]):
            image, raw, geometry = read_case(spec, files)
            labels = select_labels(spec, raw)
            intensity = spec.intensity
            prepared = prepare_intensities(image, geometry, None if intensity.mode == "none" else spec.modality,
                                           intensity.window, intensity.level, intensity.width)
            for setting in ("tight", "perturbed"):
                refs = reference_prompts(labels, geometry.ndim, spec.prompt, spec.min_pixels, spec.min_voxels,
                                         BOX_SETTINGS[setting], np.random.default_rng([0, index]))
                if not refs.prompts:
                    continue
                qualities: list = []
                predicted = segment(prepared, geometry, refs.prompts, segmenter, qualities=qualities)
                for pid, gt in objects_of(refs, geometry.ndim).items():
                    q = qualities[pid - 1]
                    rows.append({"dataset": spec.name, "case": files.case, "ndim": geometry.ndim,
                                 "setting": setting, "object": pid, "dsc": dice(predicted == pid, gt),
                                 "predicted_iou": q.predicted_iou, "key_iou": q.key_iou,
                                 "warnings": " | ".join(q.warnings)})
        print(f"{spec.name}: {sum(r['dataset'] == spec.name for r in rows)} objects "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return rows


def rates(rows: list[dict], flagged) -> str:
    bad = [r for r in rows if r["dsc"] < BAD]
    good = [r for r in rows if r["dsc"] >= GOOD]
    caught = sum(map(flagged, bad))
    alarms = sum(map(flagged, good))
    images = lambda rs: len({(r["dataset"], r["case"]) for r in rs})  # noqa: E731
    return (f"{caught}/{len(bad)} bad ({100 * caught / max(len(bad), 1):.0f} %, {images(bad)} images) | "
            f"{alarms}/{len(good)} good ({100 * alarms / max(len(good), 1):.1f} %, {images(good)} images)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--description", default=str(ROOT / "examples/datasets/shared_data.json"))
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--max-cases", type=int)
    parser.add_argument("--weights", default="lite_medsam")
    parser.add_argument("-o", "--output", default="out/quality_calibration.csv")
    args = parser.parse_args()
    rows = run(args)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scored = [r for r in rows if r["predicted_iou"] is not None]
    print(f"\n{len(rows)} objects in {len({(r['dataset'], r['case']) for r in rows})} images; bad: DSC < "
          f"{100 * BAD:.0f} %, good: DSC >= {100 * GOOD:.0f} %")
    print("| predicted IoU below | flags bad objects | flags good objects |\n|---|---|---|")
    for threshold in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9):
        print(f"| {threshold:.2f} | " + rates(scored, lambda r, t=threshold: r["predicted_iou"] < t)
              .replace(" | ", " | ") + " |")
    print(f"\nshipped warnings (LOW_IOU {LOW_IOU:.2f} and the 3D checks): {rates(rows, lambda r: bool(r['warnings']))}")
    for ndim in (2, 3):
        part = [r for r in rows if r["ndim"] == ndim]
        if part:
            print(f"  {ndim}D: {rates(part, lambda r: bool(r['warnings']))}")
    print(f"rows: {out}")


if __name__ == "__main__":
    main()
