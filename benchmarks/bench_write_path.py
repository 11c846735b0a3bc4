"""What the checked write path costs: ``medsam.io.write_labels`` (temporary file, fsync,
read-back of ITK files, rename) against a bare ``SimpleITK.WriteImage`` of the same
label map, timed in the same run. Median of ``--repeats`` runs per format.

    python benchmarks/bench_write_path.py [--repeats 5]

The label map is the TotalSegmentator example's (``../shared/data/totalseg/example_seg.nii.gz``,
resampled to 512 x 512 x 200 voxels: a whole-body CT's size).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from medsam import io

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def labels() -> tuple[np.ndarray, io.Geometry]:
    seg, geometry = io.read(SHARED / "totalseg/example_seg.nii.gz")
    zoom = [200 / seg.shape[0], 512 / seg.shape[1], 512 / seg.shape[2]]
    big = ndimage.zoom(seg, zoom, order=0)
    spacing = tuple(s / z for s, z in zip(geometry.spacing, zoom))
    return big.astype(np.uint8), io.Geometry(spacing=spacing)


def median_seconds(write, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        write()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import SimpleITK as sitk

    array, geometry = labels()
    print(f"label map {array.shape} uint8, {len(np.unique(array)) - 1} labels; median of {args.repeats}")
    print("| format | SimpleITK.WriteImage s | medsam write_labels s | ratio |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for ext in (".nii.gz", ".nii", ".nrrd", ".mha"):
            bare = Path(folder) / f"bare{ext}"
            ours = Path(folder) / f"ours{ext}"
            image = geometry.to_sitk(array)
            t_bare = median_seconds(lambda: sitk.WriteImage(image, str(bare), True), args.repeats)
            t_ours = median_seconds(lambda: io.write_labels(array, ours, geometry, overwrite=True),
                                    args.repeats)
            print(f"| {ext} | {t_bare:.3f} | {t_ours:.3f} | {t_ours / t_bare:.2f} |")


if __name__ == "__main__":
    main()
