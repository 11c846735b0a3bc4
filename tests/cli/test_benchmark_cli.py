"""``medsam benchmark interactive`` end to end on a real CT lesion, and its bad input."""

import csv
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "examples/datasets/interactive_3d.json"


@pytest.mark.slow
def test_benchmark_interactive_writes_the_tables_and_the_plot(cli, tmp_path, lite_medsam_checkpoint, shared_data):
    """Two models side by side: LiteMedSAM (a checkpoint file) and the shipped interactive model."""
    out = tmp_path / "bench"
    done = cli("benchmark", "interactive", "--description", str(DESCRIPTION), "--datasets", "recist",
               "--max-cases", "1", "--clicks", "2", "--models", f"{lite_medsam_checkpoint},lite_interactive",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "Median DSC over n = 1 objects" in done.stdout
    for model in ("lite_medsam", "lite_interactive"):
        rows = list(csv.DictReader(open(out / model / "steps.csv")))
        assert [int(r["step"]) for r in rows] == [0, 1, 2] and float(rows[0]["dsc"]) > 0.8
        objects = list(csv.DictReader(open(out / model / "objects.csv")))
        assert objects[0]["case"] == "CT_Lesion_000001_02_01_008-023" and objects[0]["name"] == "lesion"
        assert (out / model / "dsc_by_click.png").stat().st_size > 5000
    compared = list(csv.DictReader(open(out / "comparison.csv")))
    assert [int(r["step"]) for r in compared] == [0, 1, 2]
    assert set(compared[0]) >= {"dsc_lite_medsam", "dsc_lite_interactive"}
    table = (out / "comparison.md").read_text()
    assert table.startswith("| dataset | case | object | lite_medsam box | lite_interactive box | "
                            "lite_medsam +2 | lite_interactive +2 |")
    assert "- lite_interactive: " in table and "n = 1 objects" in table


@pytest.mark.slow
def test_benchmark_clicks2d_compares_models_on_held_out_images(cli, tmp_path, lite_medsam_checkpoint):
    out = tmp_path / "bench2d"
    done = cli("benchmark", "clicks2d", "--description", str(ROOT / "examples/datasets/heldout_2d.json"),
               "--datasets", "isic,jsrt", "--max-cases", "1", "--clicks", "3",
               "--models", f"{lite_medsam_checkpoint},lite_interactive", "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(open(out / "clicks2d.csv")))
    assert {r["model"] for r in rows} == {"lite_medsam", "lite_interactive"}
    assert {r["dataset"] for r in rows} == {"isic", "jsrt"}
    jsrt = [r for r in rows if r["dataset"] == "jsrt" and r["model"] == "lite_medsam"]
    assert len({r["object"] for r in jsrt}) == 3 and sorted({int(r["step"]) for r in jsrt}) == [0, 1, 2, 3]
    table = (out / "clicks2d.md").read_text()
    assert "| isic | 1 |" in table and "| jsrt | 1 |" in table      # n: images, not objects
    assert "lite_interactive +3" in table and "lite_medsam box" in table
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
