"""The 3D CT lesion case of the laptop challenge, timed three ways in one run.

    python benchmarks/bench_lesion.py                # the 6 RECIST lesions, 3 process runs
    python benchmarks/bench_lesion.py --cases 2 --process-runs 1

Each case of ``../shared/data/medsam2_recist`` (a CT crop of 13-16 slices, 512 x 512)
gets one 3D box from its reference lesion, as the challenge gives it (``x0, y0, z0, x1,
y1, z1``), and the lesion is segmented from the box's middle slice up and down within
the box's z-range, with the default model (LiteMedSAM) at the default precision:

* ``slice loop``: the way LiteMedSAM's own inference script works, written out plainly
  here with our model: from the middle slice outwards, each slice of the z-range is
  resized, embedded and decoded with the box of its neighbour's mask, until a mask
  vanishes (the reference, timed in the same run);
* ``loaded``: :func:`medsam.segmentation.segment` with a model already loaded (batch mode);
* ``process``: the whole ``medsam segment`` command, start-up and file writing included.

Prints per case and as medians the seconds of each and the ratios to the slice loop,
with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medsam import load_model
from medsam.evaluation.accuracy import reference_prompts
from medsam.io import read
from medsam.predictor import MedSAMPredictor
from medsam.prompt_geometry import mask_to_box
from medsam.segmentation import MedSAMSegmenter, segment

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def slice_loop(model: torch.nn.Module, volume: np.ndarray, box3d: tuple[float, ...]) -> np.ndarray:
    """LiteMedSAM's way: each slice of the box's z-range on its own, middle slice first,
    then outwards, each with the box of its neighbour's mask."""
    x0, y0, z0, x1, y1, z1 = box3d
    key = (int(z0) + int(z1)) // 2
    out = np.zeros(volume.shape, dtype=bool)
    predictor = MedSAMPredictor(model)
    for order in (range(key, int(z1) + 1), range(key - 1, int(z0) - 1, -1)):
        current = np.array([x0, y0, x1, y1], dtype=float)
        for z in order:
            predictor.set_image(volume[z])
            mask = predictor.predict(boxes=current)[0][0]
            out[z] = mask
            found = mask_to_box(mask)
            if found is None:
                break
            current = np.asarray(found, dtype=float)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6, help="the first N lesions")
    parser.add_argument("--process-runs", type=int, default=3, help="medsam segment runs per case")
    args = parser.parse_args()

    files = sorted((DATA / "medsam2_recist").glob("*.npz"))[:args.cases]
    model = load_model("lite_medsam", device="cpu")
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average before {os.getloadavg()[0]:.2f}")
    rows = []
    for path in files:
        volume, geometry = read(path)
        with np.load(path) as data:
            labels = data["gts"]
        (prompt,) = reference_prompts(labels > 0, 3, prompt="box").prompts
        prepared = volume  # npz crops hold 0-255 values: no intensity step
        start = time.perf_counter()
        slice_loop(model, prepared, prompt.box)
        loop_s = time.perf_counter() - start
        start = time.perf_counter()
        segment(prepared, geometry, [prompt], MedSAMSegmenter(model))
        loaded_s = time.perf_counter() - start
        box = ",".join(str(int(round(v))) for v in prompt.box)  # x0,y0,z0,x1,y1,z1
        process = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.process_runs):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "medsam", "segment", str(path), "--box", box,
                                "-o", str(Path(tmp) / "out.nii.gz"), "--overwrite"],
                               check=True, capture_output=True)
                process.append(time.perf_counter() - start)
        rows.append((path.stem, len(volume), loop_s, loaded_s, statistics.median(process)))
        print(f"{path.stem}: {len(volume)} slices; slice loop {loop_s:.2f} s, loaded {loaded_s:.2f} s "
              f"({loaded_s / loop_s:.2f}x), process {rows[-1][4]:.2f} s ({rows[-1][4] / loop_s:.2f}x)",
              flush=True)
    loop, loaded, proc = (statistics.median(r[i] for r in rows) for i in (2, 3, 4))
    print(f"\nmedian of {len(rows)} cases: slice loop {loop:.2f} s, loaded {loaded:.2f} s "
          f"({loaded / loop:.2f}x), whole process {proc:.2f} s ({proc / loop:.2f}x); "
          f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
