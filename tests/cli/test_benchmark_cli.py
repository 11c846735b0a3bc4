"""``medsam benchmark interactive`` end to end on a real CT lesion, and its bad input."""

import csv
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "examples/datasets/interactive_3d.json"


@pytest.mark.slow
def test_benchmark_interactive_writes_the_tables_and_the_plot(cli, tmp_path, lite_medsam_checkpoint, shared_data):
    out = tmp_path / "bench"
    done = cli("benchmark", "interactive", "--description", str(DESCRIPTION), "--datasets", "recist",
               "--max-cases", "1", "--clicks", "2", "--checkpoint", str(lite_medsam_checkpoint), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Median DSC over n = 1 objects" in done.stdout
    rows = list(csv.DictReader(open(out / "steps.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2] and float(rows[0]["dsc"]) > 0.8
    objects = list(csv.DictReader(open(out / "objects.csv")))
    assert objects[0]["case"] == "CT_Lesion_000001_02_01_008-023" and objects[0]["name"] == "lesion"
    assert (out / "dsc_by_click.png").stat().st_size > 5000
    again = cli("benchmark", "interactive", "--description", str(DESCRIPTION), "-o", str(out))
    assert again.returncode == 2 and "output exists" in again.stderr and "--overwrite" in again.stderr


def test_benchmark_interactive_bad_input_is_one_line(cli_process, tmp_path):
    done = cli_process("benchmark", "interactive", "--description", str(DESCRIPTION), "--datasets", "nope",
               "-o", str(tmp_path / "b"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"medsam: error: {DESCRIPTION}: no dataset(s) nope (it has brats_flair, recist, totalseg_ct, totalseg_mr)"]
    assert not (tmp_path / "b").exists()
    two_d = tmp_path / "d.json"
    two_d.write_text(json.dumps({"root": str(ROOT.parent / "shared/data"), "datasets": [
        {"name": "jsrt", "modality": "xray", "images": "jsrt_scr_cxr/images/JPCLN001.png",
         "labels": "jsrt_scr_cxr/masks_labels/{stem}.png"}]}))
    done = cli_process("benchmark", "interactive", "--description", str(two_d), "-o", str(tmp_path / "c"))
    assert done.returncode == 2 and "no 3D cases" in done.stderr
