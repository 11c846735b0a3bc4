"""The unit of analysis and the NSD tolerance from the command line, as real
subprocesses on real data: stardist's one image of 125 nuclei, JSRT's heart masks."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from medsam.evaluation.results import write_results
from tests.model_free import nuclei_rows


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def nuclei_tables(shared_data, tmp_path):
    """Two result CSVs of stardist's 125 nuclei (one image), one per model-free method."""
    return [write_results(rows, tmp_path / f"{m}.csv") for m, rows in nuclei_rows(shared_data).items()]


def test_compare_pairs_images_unless_objects_are_asked_for(cli, nuclei_tables, tmp_path):
    proc = cli("compare", *nuclei_tables, "-o", tmp_path / "images", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "images" / "comparison.csv")
    assert [(r["metric"], r["n"], r["pvalue"], r["unit"]) for r in rows] == [
        ("dsc", "1", "nan", "image"), ("nsd", "1", "nan", "image")]
    assert "paired images (n: images)" in proc.stdout and "NSD at a tolerance of 2 px" in proc.stdout
    proc = cli("compare", *nuclei_tables, "-o", tmp_path / "objects", "--no-plots", "--unit", "object")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "objects" / "comparison.csv")
    assert [r["n"] for r in rows] == ["125", "125"] and float(rows[0]["pvalue"]) < 1e-6
    proc = cli("report", *nuclei_tables, "-o", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    assert read_csv(tmp_path / "report" / "summary.csv")[0]["n_cases"] == "1"
    assert read_csv(tmp_path / "report" / "summary_objects.csv")[0]["n_cases"] == "125"


def test_evaluate_sets_the_nsd_tolerance_from_the_image_diagonal(cli, shared_data, tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    for path in sorted((shared_data / "jsrt_scr_cxr" / "masks_labels").glob("*.png"))[:2]:
        heart = np.asarray(Image.open(path)) == 3
        Image.fromarray(heart.astype(np.uint8)).save(gt / path.name)
        Image.fromarray(ndimage.binary_dilation(heart, iterations=6).astype(np.uint8)).save(pred / path.name)
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "fixed.csv", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "share.csv", "--quiet",
               "--nsd-diagonal", "0.5")
    assert proc.returncode == 0, proc.stderr
    fixed, share = read_csv(tmp_path / "fixed.csv"), read_csv(tmp_path / "share.csv")
    assert {r["nsd_tolerance"] for r in fixed} == {"2.0"} and {r["nsd_diagonal_pct"] for r in fixed} == {"0.0"}
    diagonal = math.hypot(*heart.shape)   # JSRT's label maps: 1024 x 1024
    assert [float(r["nsd_tolerance"]) for r in share] == pytest.approx([0.005 * diagonal] * 2)
    assert all(float(s["nsd"]) > float(f["nsd"]) for s, f in zip(share, fixed))   # 6 px off: within 7.2 px
    assert "0.5 % of the image diagonal" in (tmp_path / "share.summary.md").read_text()
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "bad.csv", "--nsd-diagonal", "0")
    assert proc.returncode == 2 and "diagonal" in proc.stderr and not (tmp_path / "bad.csv").exists()
