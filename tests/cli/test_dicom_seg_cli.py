"""`medsam segment` writes a DICOM SEG of a real CT series, equal to its NIfTI output, with
the weights' sha256; a box from the NIfTI of the same scan lands right with --box-from;
`medsam evaluate` scores SEG against NIfTI either way; bad input (a non-DICOM input, an
anonymised series) gets one line, exit 2, nothing written, and a corrupt SEG fails its
case of an evaluation with one line naming it. The real LiteMedSAM on the liver of TotalSegmentator's example series."""

import csv

import numpy as np
import pytest

from medsam import io
from medsam.segmentation import mask_to_box
from medsam.weights import file_digest

pytestmark = pytest.mark.slow

REFERENCE = "totalseg/example_seg_dicom.nii.gz"   # rows run the other way from the series
LIVER = 5


@pytest.fixture(scope="module")
def liver_box(shared_data):
    """A 3D box around the liver on slices 8-10, in the series' voxel indices."""
    reference = io.read(shared_data / REFERENCE)[0][:, ::-1] == LIVER
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(reference[8:11].any(axis=0)))
    return f"{x0},{y0},8,{x1},{y1},10"


@pytest.fixture(scope="module")
def outputs(pacs_ct_series, liver_box, lite_medsam_checkpoint, tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("seg")
    for name in ("liver.dcm", "liver.nii.gz"):
        done = run_cli("segment", pacs_ct_series, "--box", liver_box, "--modality", "ct",
                       "--checkpoint", lite_medsam_checkpoint, "-o", out / name)
        assert done.returncode == 0, done.stderr
    return out


def test_the_seg_has_the_nifti_outputs_voxels_and_the_weights_sha256(outputs, lite_medsam_checkpoint,
                                                                      same_place):
    import highdicom as hd

    seg, seg_geometry = io.read(outputs / "liver.dcm")
    nifti, geometry = io.read(outputs / "liver.nii.gz")
    np.testing.assert_array_equal(seg, nifti)
    assert same_place(seg_geometry, geometry) and nifti.sum() > 5000
    algorithm = hd.seg.segread(str(outputs / "liver.dcm")).SegmentSequence[0] \
        .SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "lite_medsam.pth"
    assert algorithm.AlgorithmParameters == f"weights_sha256={file_digest(lite_medsam_checkpoint)}"


def test_evaluate_scores_seg_against_nifti_both_ways(cli, outputs, tmp_path):
    for pred, gt in (("liver.dcm", "liver.nii.gz"), ("liver.nii.gz", "liver.dcm")):
        pred_dir, gt_dir = tmp_path / f"pred_{pred}", tmp_path / f"gt_{pred}"
        pred_dir.mkdir()
        gt_dir.mkdir()
        (pred_dir / ("ct" + pred[len("liver"):])).write_bytes((outputs / pred).read_bytes())
        (gt_dir / ("ct" + gt[len("liver"):])).write_bytes((outputs / gt).read_bytes())
        table = tmp_path / f"{pred}.csv"
        done = cli("evaluate", "--pred", pred_dir, "--gt", gt_dir, "-o", table, "--quiet")
        assert done.returncode == 0, done.stderr
        rows = list(csv.DictReader(table.open()))
        assert [(r["case"], float(r["dsc"])) for r in rows] == [("ct", 1.0)]


def test_a_corrupt_seg_given_to_evaluate_is_one_line(cli, outputs, tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    (pred / "ct.dcm").write_bytes((outputs / "liver.dcm").read_bytes()[:4000])
    (gt / "ct.nii.gz").write_bytes((outputs / "liver.nii.gz").read_bytes())
    done = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "r.csv", "--quiet")
    # as for any unreadable case of a folder: the case fails (exit 1), named on one line and in
    # the failures table; the results table is not written
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "ct.dcm" in x]
    assert line == f"medsam evaluate: failed: case ct: {pred / 'ct.dcm'}: not a readable DICOM SEG" + \
        line.split("not a readable DICOM SEG", 1)[1]
    assert not (tmp_path / "r.csv").exists() and "ct.dcm" in (tmp_path / "r.failed.csv").read_text()


def test_a_non_dicom_input_cannot_write_seg(cli, shared_data, tmp_path):
    out = tmp_path / "ct.dcm"
    done = cli("segment", shared_data / "totalseg/example_ct_sm.nii.gz", "--box", "70,29,0,92,51,18",
               "--modality", "ct", "-o", out)
    assert done.returncode == 2 and done.stderr.count("medsam: error:") == 1, done.stderr
    assert "a DICOM SEG references its DICOM source" in done.stderr
    assert "example_ct_sm.nii.gz is not DICOM" in done.stderr
    assert not list(tmp_path.iterdir())


def test_an_anonymised_series_cannot_be_referenced(cli, shared_data, liver_box, tmp_path):
    done = cli("segment", shared_data / "totalseg/example_ct_dicom", "--box", liver_box, "--modality", "ct",
               "-o", tmp_path / "liver.dcm")
    assert done.returncode == 2 and done.stderr.count("medsam: error:") == 1, done.stderr
    assert "has no StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID" in done.stderr
    assert not list(tmp_path.iterdir())


def test_a_box_from_the_nifti_lands_on_the_series_with_box_from(cli, shared_data, outputs, tmp_path):
    """The reference NIfTI's rows run the other way from the series: its voxel box given to
    the series as it is segments the wrong place; with --box-from it gives the liver."""
    from medsam.metrics import dice

    nifti = shared_data / REFERENCE
    reference = io.read(nifti)[0] == LIVER
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(reference[8:11].any(axis=0)))
    box = f"{x0},{y0},8,{x1},{y1},10"
    done = cli("segment", shared_data / "totalseg/example_ct_dicom",
               "--box", box, "--box-from", nifti, "--modality", "ct", "-o", tmp_path / "from.nii.gz")
    assert done.returncode == 0, done.stderr
    placed = io.read(tmp_path / "from.nii.gz")[0]
    expected = io.read(outputs / "liver.nii.gz")[0]      # the box given in the series' own indices
    assert dice(placed > 0, expected > 0) > 0.98
    wrong = cli("segment", shared_data / "totalseg/example_ct_dicom", "--box", box, "--modality", "ct",
                "-o", tmp_path / "wrong.nii.gz")
    assert wrong.returncode == 0, wrong.stderr
    truth = reference[:, ::-1]
    assert dice(io.read(tmp_path / "wrong.nii.gz")[0][8:11] > 0, truth[8:11]) < \
        dice(placed[8:11] > 0, truth[8:11]) - 0.15   # 0.75 against 0.97 here
    refused = cli("segment", nifti, "--box", box, "--box-from", nifti, "--slice", "3", "-o", tmp_path / "x.nii.gz")
    assert refused.returncode == 2 and "does not combine with --world or --slice" in refused.stderr
