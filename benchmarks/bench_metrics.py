"""Time DSC + NSD + HD95 on a 512x512x200 CT-like mask pair (spacing 2.5 x 0.8 x 0.8 mm).

    python benchmarks/bench_metrics.py [--deepmind]

Cases: ``close``: the reference ellipsoid organ shifted by 3 voxels and dilated
(a good prediction); ``hole``: the same with a 20x100x100 voxel hole cut out
(many surface elements far inside the other surface: the slow case).
``--deepmind`` also times DeepMind's ``surface-distance`` package on the same pair.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from medsam.metrics import dice, hausdorff_distance, normalized_surface_distance, surface_distances

SPACING = (2.5, 0.8, 0.8)


def make_pair(hole: bool):
    z, y, x = np.ogrid[:200, :512, :512]
    gt = (((z - 100) * 2.5) ** 2 / 200**2 + ((y - 256) * 0.8) ** 2 / 180**2
          + ((x - 256) * 0.8) ** 2 / 150**2) < 1
    pred = ndimage.binary_dilation(np.roll(gt, 3, axis=2))
    if hole:
        pred[90:110, 200:300, 200:300] = False
    return pred, gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deepmind", action="store_true")
    args = parser.parse_args()
    for name in ("close", "hole"):
        pred, gt = make_pair(name == "hole")
        start = time.perf_counter()
        d = surface_distances(pred, gt, SPACING)
        values = (dice(pred, gt), normalized_surface_distance(d, tolerance=2.0), hausdorff_distance(d))
        ours = time.perf_counter() - start
        print(f"{name}: medsam {ours:.2f} s  DSC {values[0]:.6f} NSD {values[1]:.6f} HD95 {values[2]:.4f}")
        if args.deepmind:
            import surface_distance as sd

            start = time.perf_counter()
            r = sd.compute_surface_distances(gt, pred, SPACING)
            ref = (sd.compute_dice_coefficient(gt, pred), sd.compute_surface_dice_at_tolerance(r, 2.0),
                   sd.compute_robust_hausdorff(r, 95))
            theirs = time.perf_counter() - start
            print(f"{name}: deepmind {theirs:.2f} s  DSC {ref[0]:.6f} NSD {ref[1]:.6f} HD95 {ref[2]:.4f}")


if __name__ == "__main__":
    main()
