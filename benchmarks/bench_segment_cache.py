"""What the per-slice embedding cache saves when several objects share a volume,
and when the same volume is segmented again with the same segmenter.

Segments several organs of a real CT (TotalSegmentator's ``example_ct_sm.nii.gz``,
boxes taken from its reference labels) twice with the same model: once with the
per-slice embedding cache (the default of ``medsam segment``) and once with it
disabled, and prints the median wall time of several runs, the number of encoder
passes, and the ratio. The label maps must be identical.

    python benchmarks/bench_segment_cache.py                 # lite, 3 organs
    python benchmarks/bench_segment_cache.py --variant vit_b --runs 1

Random weights: the cost of the encoder does not depend on the weights, and the
masks are only compared with each other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import medsam
from medsam.intensity import prepare_intensities
from medsam.io import read
from medsam.segmentation import BoxPrompt, MedSAMSegmenter, segment

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
ORGANS = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 6: "stomach", 5: "liver"}


def organ_prompts(labels: np.ndarray, count: int) -> list[BoxPrompt]:
    prompts = []
    for label, name in list(ORGANS.items())[:count]:
        z, y, x = np.nonzero(labels == label)
        prompts.append(BoxPrompt((x.min(), y.min(), z.min(), x.max(), y.max(), z.max()),
                                 label=label, name=name))
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="lite", choices=["lite", "vit_b"])
    parser.add_argument("--objects", type=int, default=3, help="organs to segment (1-5)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    image, geometry = read(DATA / "totalseg" / "example_ct_sm.nii.gz")
    reference, _ = read(DATA / "totalseg" / "example_seg.nii.gz")
    prompts = organ_prompts(reference, args.objects)
    prepared = prepare_intensities(image, geometry, "ct", window="abdomen")
    torch.manual_seed(0)
    model = medsam.build_model(args.variant)

    results = {}
    for name, cache_slices in (("cache on", 4096), ("cache off", 0)):
        times, calls, labels = [], None, None
        for _ in range(args.runs):
            segmenter = MedSAMSegmenter(model, cache_slices=cache_slices)
            start = time.perf_counter()
            labels = segment(prepared, geometry, prompts, segmenter, mode="plain")
            times.append(time.perf_counter() - start)
            calls = segmenter.encoder_calls
        results[name] = (statistics.median(times), calls, labels)

    print(f"volume {image.shape} (z, y, x), {len(prompts)} objects "
          f"({', '.join(p.name for p in prompts)}), variant {args.variant}, "
          f"{torch.get_num_threads()} threads, median of {args.runs} runs, plain mode")
    for name, (seconds, calls, _) in results.items():
        print(f"  {name:9s}: {seconds:8.2f} s, {calls} encoder passes")
    on, off = results["cache on"], results["cache off"]
    print(f"  saved    : {off[0] - on[0]:.2f} s ({off[0] / on[0]:.2f}x faster with the cache)")
    print(f"  label maps identical: {bool(np.array_equal(on[2], off[2]))}")

    # a second call on the same volume with the same segmenter: slices are keyed by content
    segmenter = MedSAMSegmenter(model)
    segment(prepared, geometry, prompts, segmenter, mode="plain")
    before, start = segmenter.encoder_calls, time.perf_counter()
    again = segment(prepared.copy(), geometry, prompts, segmenter, mode="plain")
    print(f"  repeat call, same segmenter: {time.perf_counter() - start:.2f} s, "
          f"{segmenter.encoder_calls - before} encoder passes, "
          f"identical: {bool(np.array_equal(again, on[2]))}")


if __name__ == "__main__":
    main()
