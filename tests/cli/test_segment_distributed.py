"""`medsam segment` on a folder under torchrun: two CPU processes (gloo) share the cases
and write exactly what one process writes; process 0 writes the times CSV."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medsam import io

ROOT = Path(__file__).resolve().parents[2]
KVASIR = "kvasir_seg_subset/images"


def _times(folder: Path) -> list[tuple[str, str]]:
    with open(folder / "segment_times.csv", newline="") as f:
        return [(row["case"], row["status"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_two_processes_write_what_one_process_writes(cli_process, shared_data, tmp_path, checkpoint):
    cases = tmp_path / "cases"
    cases.mkdir()
    images = sorted((shared_data / KVASIR).glob("*.jpg"))[:4]
    rows = ["case,x0,y0,x1,y1"]
    for image in images:
        shutil.copy(image, cases / image.name)
        h, w = io.read(image)[0].shape[:2]
        rows.append(f"{image.stem},{w // 4},{h // 4},{3 * w // 4},{3 * h // 4}")
    (cases / "broken.png").write_bytes(b"not a png")           # one failing case, on some rank
    rows.append("broken,1,1,5,5")
    prompts = tmp_path / "boxes.csv"
    prompts.write_text("\n".join(rows) + "\n")
    common = ["segment", cases, "--prompts", prompts, "--checkpoint", checkpoint, "--device", "cpu"]

    # one thread per process in both runs: the same arithmetic, so the same bits
    one = cli_process(*common, "-o", tmp_path / "one", env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 1, one.stderr                     # the broken case fails
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "medsam", *map(str, common), "-o", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode != 0                                 # torchrun reports the failed case
    assert "segmented 4 of 5 cases" in two.stdout and "by 2 processes" in two.stdout
    assert two.stdout.count("segmented 4 of 5") == 1           # process 0 reports, once
    assert two.stderr.count("medsam: model ") == 1

    assert _times(tmp_path / "two") == _times(tmp_path / "one")  # every case, in folder order
    assert sorted(_times(tmp_path / "one")) == sorted(
        [("broken", "failed")] + [(image.stem, "ok") for image in images])
    written = sorted(p.name for p in (tmp_path / "one").iterdir() if p.suffix != ".csv")
    assert len(written) == 4
    assert written == sorted(p.name for p in (tmp_path / "two").iterdir() if p.suffix != ".csv")
    for name in written:
        np.testing.assert_array_equal(io.read(tmp_path / "two" / name)[0],
                                      io.read(tmp_path / "one" / name)[0])
