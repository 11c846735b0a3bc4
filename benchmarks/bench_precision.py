"""Accuracy guard and speed of the inference precisions, with the real LiteMedSAM weights.

    python benchmarks/bench_precision.py                         # 4 cases of every dataset
    python benchmarks/bench_precision.py --mode bf16 --max-cases 8 --datasets jsrt kvasir

For each dataset of ``examples/datasets/shared_data.json`` the exact (float32) path
and the fast ``--mode`` segment the same images from the same reference boxes
(:mod:`medsam.evaluation.agreement`). Prints per dataset the lowest and median
per-image agreement (Dice between the two label maps), the median DSC against the
reference under each mode and its change, and whether the guard holds
(agreement >= 99.5 % on every image, median DSC within 0.5 points). Also prints the
median image-embedding time of each mode on one 256 x 256 image, the machine and its
load, and which mode ``precision="auto"`` picks here.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from medsam import load_model
from medsam.datasets.description import load_description
from medsam.evaluation.agreement import compare_modes, summarise
from medsam.precision import GUARD_AGREEMENT, GUARD_DSC_POINTS, native_bf16, precision_context, resolve_precision
from medsam.segmentation import MedSAMSegmenter

ROOT = Path(__file__).resolve().parents[1]


def embedding_seconds(model: torch.nn.Module, precision: str, runs: int) -> float:
    x = torch.rand(1, 3, 256, 256)
    times = []
    with torch.inference_mode(), precision_context(precision, torch.device("cpu")):
        model.image_encoder(x)
        for _ in range(runs):
            start = time.perf_counter()
            model.image_encoder(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="bf16", choices=("bf16",), help="the fast mode to check")
    parser.add_argument("--description", default=str(ROOT / "examples/datasets/shared_data.json"))
    parser.add_argument("--datasets", nargs="*", help="names to run (default: all)")
    parser.add_argument("--max-cases", type=int, default=4, help="the first N cases of each dataset")
    parser.add_argument("--runs", type=int, default=5, help="timed embeddings per mode")
    args = parser.parse_args()

    device = torch.device("cpu")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, native bf16: "
          f"{native_bf16(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")
    model = load_model("lite_medsam", device="cpu")
    exact_s = embedding_seconds(model, "exact", args.runs)
    fast_s = embedding_seconds(model, args.mode, args.runs)
    print(f"image embedding 256x256: exact {exact_s:.3f} s, {args.mode} {fast_s:.3f} s "
          f"({exact_s / fast_s:.2f}x)")

    description = load_description(args.description)
    exact = MedSAMSegmenter(model, precision="exact")
    fast = MedSAMSegmenter(model, precision=args.mode)
    print(f"\n| dataset | images | agreement % min / median | median DSC % exact | {args.mode} | change (points) "
          f"| guard |\n|---|---|---|---|---|---|---|")
    every = []
    for spec in description.datasets:
        if args.datasets and spec.name not in args.datasets:
            continue
        rows = compare_modes(spec, exact, fast, max_cases=args.max_cases)
        if not rows:
            continue
        every += rows
        s = summarise(rows)[0]
        median_agreement = float(np.median([r.agreement for r in rows]))
        print(f"| {s.dataset} | {s.images} | {100 * s.min_agreement:.2f} / {100 * median_agreement:.2f} | "
              f"{100 * s.median_dsc_exact:.2f} | {100 * s.median_dsc_fast:.2f} | {s.dsc_change_points:+.2f} | "
              f"{'pass' if s.passed else 'fail'} |", flush=True)
    passed = all(s.passed for s in summarise(every))
    print(f"\nguard (agreement >= {100 * GUARD_AGREEMENT:.1f} % per image, median DSC within "
          f"{GUARD_DSC_POINTS} points): {args.mode} {'passes' if passed else 'fails'}; "
          f"precision='auto' runs {resolve_precision('auto', device)} here")


if __name__ == "__main__":
    main()
