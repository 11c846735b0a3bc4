"""Accuracy of a model on the real data in ``../shared/data``, boxes from the references.

Every dataset of a description (default ``examples/datasets/shared_data.json``) is
segmented through the same path as ``medsam segment`` with boxes drawn from the
reference masks (tight, and grown by the paper's 0-20 px at 1024), and each
reference label is scored with DSC and NSD (see :mod:`medsam.evaluation.accuracy`).
Prints per dataset, structure and box setting the median DSC and NSD with their IQR
over the images (an image's objects averaged: the README's table), then per dataset
with every row pooled (what the test suite's floors guard), and writes every row to a CSV.

    python benchmarks/bench_accuracy.py                        # the default model, all cases
    python benchmarks/bench_accuracy.py --datasets jsrt kvasir --max-cases 8
    python benchmarks/bench_accuracy.py --weights medsam_vit_b -o vit_b_accuracy.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

from medsam import load_model
from medsam.datasets.description import load_description
from medsam.evaluation.accuracy import evaluate_dataset, median_table, table_markdown
from medsam.segmentation import MedSAMSegmenter

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--description", default=str(ROOT / "examples/datasets/shared_data.json"))
    parser.add_argument("--datasets", nargs="*", help="names to run (default: all)")
    parser.add_argument("--max-cases", type=int, help="the first N cases of each dataset")
    parser.add_argument("--weights", help="named weights or a checkpoint (default: lite_medsam)")
    parser.add_argument("-o", "--output", default="out/accuracy.csv", help="CSV of every row")
    args = parser.parse_args()

    description = load_description(args.description)
    model = load_model(args.weights)
    segmenter = MedSAMSegmenter(model)
    rows = []
    for spec in description.datasets:
        if args.datasets and spec.name not in args.datasets:
            continue
        start = time.perf_counter()
        found = evaluate_dataset(spec, segmenter, max_cases=args.max_cases, progress=True)
        rows += found
        seconds = time.perf_counter() - start
        cases = len({r.case for r in found})
        print(f"{spec.name}: {cases} cases in {seconds:.1f} s ({seconds / max(cases, 1):.2f} s "
              f"per case, both box settings)", flush=True)
    print()
    print(f"model: {args.weights or 'lite_medsam (default)'}")
    print(table_markdown(median_table(rows, by="structure")))
    print()
    print("every row of a dataset pooled (the test floors):")
    print(table_markdown(median_table(rows)))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in dataclasses.fields(rows[0])])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
    print(f"rows: {output}")


if __name__ == "__main__":
    main()
