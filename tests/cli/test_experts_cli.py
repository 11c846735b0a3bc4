"""`medsam experts` end to end on DRIVE's two manual annotations."""

import csv

import numpy as np
import pytest
from PIL import Image


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_experts_on_drive(cli, shared_data, tmp_path):
    drive = shared_data / "drive_fundus" / "test"
    out = tmp_path / "experts"
    result = cli("experts", "--rater", f"first={drive / '1st_manual'}",
                 "--rater", f"second={drive / '2nd_manual'}",
                 "--model", f"medsam={drive / '1st_manual'}",
                 "--case-pattern", r"^(\d+)_", "--threshold", "127", "-o", out)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {"experts.csv", "experts.md", "experts.png",
                                               "experts_scores.csv"}
    rows = list(csv.DictReader(open(out / "experts_scores.csv")))
    # 20 cases x (2 raters + 2 model rows against leave-one-out + 1 against all)
    assert len(rows) == 20 * 5
    first = np.array(Image.open(drive / "1st_manual" / "01_manual1.gif")) > 127
    second = np.array(Image.open(drive / "2nd_manual" / "01_manual2.gif").convert("L")) > 127
    row = next(r for r in rows if r["case"] == "01" and r["participant"] == "first")
    assert float(row["dsc"]) == pytest.approx(_dice(first, second), abs=1e-12)
    # the "model" here is rater 1's masks, so it is perfect against the consensus of
    # the raters other than "second", which is rater 1 alone
    model = next(r for r in rows if r["case"] == "01" and r["participant"] == "medsam"
                 and r["reference"] == "consensus without second")
    assert float(model["dsc"]) == 1.0
    table = list(csv.DictReader(open(out / "experts.csv")))
    assert 0.7 < float(table[0]["rater_dsc"]) < 0.9  # DRIVE inter-rater agreement is about 0.79
    assert "| first |" in result.stdout


def test_experts_errors(cli, cli_process, shared_data, tmp_path):
    drive = shared_data / "drive_fundus" / "test"
    one = cli_process("experts", "--rater", f"a={drive / '1st_manual'}", "-o", tmp_path / "x")
    assert one.returncode == 2 and "at least two" in one.stderr
    missing = cli("experts", "--rater", f"a={drive / '1st_manual'}", "--rater", f"b={tmp_path / 'nope'}",
                  "-o", tmp_path / "x")
    assert missing.returncode == 2 and "nope" in missing.stderr
    bad = cli("experts", "--rater", f"a={drive / '1st_manual'}", "--rater", f"b={drive / '2nd_manual'}",
              "--case-pattern", "(", "-o", tmp_path / "x")
    assert bad.returncode == 2 and "--case-pattern" in bad.stderr
    nomatch = cli("experts", "--rater", f"a={drive / '1st_manual'}", "--rater", f"b={drive / '2nd_manual'}",
                  "-o", tmp_path / "x")
    assert nomatch.returncode == 2 and "no case" in nomatch.stderr
    assert not (tmp_path / "x").exists()
    (tmp_path / "done").mkdir()
    exists = cli("experts", "--rater", f"a={drive / '1st_manual'}", "--rater", f"b={drive / '2nd_manual'}",
                 "--case-pattern", r"^(\d+)_", "-o", tmp_path / "done")
    assert exists.returncode == 2 and "--overwrite" in exists.stderr
    no_threshold = cli("experts", "--rater", f"a={drive / '1st_manual'}", "--rater", f"b={drive / '2nd_manual'}",
                       "--case-pattern", r"^(\d+)_", "-o", tmp_path / "y")
    assert no_threshold.returncode == 2 and "no pixel is background" in no_threshold.stderr
    assert "--threshold" in no_threshold.stderr and not (tmp_path / "y").exists()
