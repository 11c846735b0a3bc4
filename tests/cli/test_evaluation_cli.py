"""medsam evaluate / compare / volume / report as real subprocesses on real masks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from scipy import ndimage

from medsam import io as mio
from medsam.metrics import evaluate_labels


def lesion_files(shared_data):
    return sorted((shared_data / "medsam2_recist").glob("*.npz"))[:4]


@pytest.fixture
def lesion_folders(shared_data, tmp_path):
    """gt/: links to the real npz lesions (``gts``); pred/: NIfTI dilated
    lesions written with their geometry; pred_npz/: npz ``segs``."""
    gt, pred, pred_npz = tmp_path / "gt", tmp_path / "pred", tmp_path / "pred_npz"
    for d in (gt, pred, pred_npz):
        d.mkdir()
    for path in lesion_files(shared_data):
        (gt / path.name).symlink_to(path)
        with np.load(path) as data:
            seg = ndimage.binary_dilation(data["gts"] > 0).astype(np.uint8)
            spacing_xyz = data["spacing"]
        mio.write(seg, pred / f"{path.stem}.nii.gz", mio.read_npz(path).geometry)
        np.savez_compressed(pred_npz / path.name, segs=seg, spacing=spacing_xyz)
    return gt, pred, pred_npz


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_evaluate_nifti_against_npz(cli, lesion_folders, shared_data, tmp_path):
    gt, pred, pred_npz = lesion_folders
    out = tmp_path / "res.csv"
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", out, "--method", "dil", "--task", "lesion",
               "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(out)
    assert len(rows) == 4 and {r["method"] for r in rows} == {"dil"}
    # the numbers are those of the metrics on the arrays themselves
    path = lesion_files(shared_data)[0]
    with np.load(path) as data:
        g = data["gts"]
        spacing = tuple(data["spacing"][::-1])
    expected = evaluate_labels(ndimage.binary_dilation(g > 0).astype(np.uint8), g, spacing)[0]
    row = next(r for r in rows if r["case"] == path.stem)
    assert float(row["dsc"]) == pytest.approx(expected.dsc, abs=1e-12)
    assert float(row["nsd"]) == pytest.approx(expected.nsd, abs=1e-12)
    assert float(row["gt_volume"]) == pytest.approx(expected.gt_volume) and row["volume_unit"] == "mL"
    assert (tmp_path / "res.summary.csv").exists() and "median (IQR)" in (tmp_path / "res.summary.md").read_text()
    assert "median (IQR)" in proc.stdout
    # same numbers from npz predictions
    out2 = tmp_path / "res2.csv"
    proc = cli("evaluate", "--pred", pred_npz, "--gt", gt, "-o", out2, "--quiet", "--method", "dil",
               "--task", "lesion")
    assert proc.returncode == 0, proc.stderr
    assert [r["dsc"] for r in read_csv(out2)] == [r["dsc"] for r in rows]
    # no overwrite without --overwrite
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", out)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_evaluate_mismatch_is_named_and_partial(cli, lesion_folders, shared_data, tmp_path):
    gt, pred, _ = lesion_folders
    bad = lesion_files(shared_data)[1]
    arr, geom = mio.read(pred / f"{bad.stem}.nii.gz")
    wrong = mio.Geometry(spacing=(geom.spacing[0] * 2, *geom.spacing[1:]))
    (pred / f"{bad.stem}.nii.gz").unlink()
    mio.write(arr, pred / f"{bad.stem}.nii.gz", wrong)
    cropped = lesion_files(shared_data)[2]
    arr, geom = mio.read(pred / f"{cropped.stem}.nii.gz")
    (pred / f"{cropped.stem}.nii.gz").unlink()
    mio.write(arr[:, :-1], pred / f"{cropped.stem}.nii.gz", geom)
    out = tmp_path / "res.csv"
    proc = cli("evaluate", "--pred", pred, "--gt", gt, "-o", out, "--quiet")
    assert proc.returncode == 1
    assert f"case {bad.stem}: prediction spacing" in proc.stderr
    assert f"case {cropped.stem}: prediction" in proc.stderr and "shape" in proc.stderr
    assert "2 of 4 cases failed" in proc.stderr
    assert not out.exists()
    assert len(read_csv(tmp_path / "res.partial.csv")) == 2
    failed = read_csv(tmp_path / "res.failed.csv")
    assert sorted(r["case"] for r in failed) == sorted([bad.stem, cropped.stem])


def test_evaluate_bad_input(cli, shared_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    gt = shared_data / "busi_breast_us" / "masks"
    proc = cli("evaluate", "--pred", empty, "--gt", gt, "-o", tmp_path / "r.csv")
    assert proc.returncode == 2 and "folder holds no mask files" in proc.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "nothing_alike.png").write_bytes((gt / "10018.png").read_bytes())
    proc = cli("evaluate", "--pred", other, "--gt", gt, "-o", tmp_path / "r.csv")
    assert proc.returncode == 2 and "no case names in common" in proc.stderr
    # lossy JPEG masks are not binary
    kv = shared_data / "kvasir_seg_subset" / "masks"
    proc = cli("evaluate", "--pred", kv, "--gt", kv, "-o", tmp_path / "k.csv", "--binary", "--quiet",
               "--workers", "1")
    assert proc.returncode == 1 and "is not binary" in proc.stderr and not (tmp_path / "k.csv").exists()
    # ... but thresholded they are: identical folders score 1
    proc = cli("evaluate", "--pred", kv, "--gt", kv, "-o", tmp_path / "k.csv", "--threshold", "127", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "k.csv")
    assert len(rows) >= 100 and all(float(r["dsc"]) == 1.0 and float(r["nsd"]) == 1.0 for r in rows)
    assert rows[0]["volume_unit"] == "pixels"   # JPEG masks have no pixel size: counts, px
    assert "no physical pixel size: their NSD tolerance is 2 px" in proc.stderr
    assert not (tmp_path / "k.failed.csv").exists()  # the failed run's list is gone
    # an unreadable mask fails its case, by name
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "10018.png").write_bytes(b"not a png")
    proc = cli("evaluate", "--pred", broken, "--gt", gt, "-o", tmp_path / "b.csv", "--quiet")
    assert proc.returncode == 1 and "10018" in proc.stderr


def write_two_methods(cli, lesion_folders, tmp_path):
    gt, pred, _ = lesion_folders
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    for p in sorted(gt.iterdir()):
        with np.load(p) as data:
            seg = np.roll(data["gts"], 2, axis=2)
            np.savez_compressed(shifted / p.name, segs=seg, spacing=data["spacing"])
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for folder, out in ((pred, a), (shifted, b)):
        proc = cli("evaluate", "--pred", folder, "--gt", gt, "-o", out, "--quiet", "--task", "lesion")
        assert proc.returncode == 0, proc.stderr
    return a, b


@pytest.mark.slow
def test_compare_volume_report(cli, cli_process, lesion_folders, tmp_path):
    """evaluate, compare, volume and report, each as a real process."""
    pytest.importorskip("matplotlib")
    a, b = write_two_methods(cli_process, lesion_folders, tmp_path)
    proc = cli_process("compare", a, b, "-o", tmp_path / "cmp", "--correction", "bh")
    assert proc.returncode == 0, proc.stderr
    assert "Benjamini-Hochberg" in proc.stdout
    rows = read_csv(tmp_path / "cmp" / "comparison.csv")
    # "pred" says what a folder holds, not which method: the method is named after the folder above
    assert {r["metric"] for r in rows} == {"dsc", "nsd"} and rows[0]["method_a"] == tmp_path.name
    assert rows[0]["method_b"] == "shifted"
    assert (tmp_path / "cmp" / "boxplot_dsc.png").stat().st_size > 1000

    proc = cli_process("volume", "--agreement", a, "-o", tmp_path / "vol")
    assert proc.returncode == 0, proc.stderr
    assert "Pearson r" in proc.stdout and (tmp_path / "vol" / "bland_altman.png").exists()

    proc = cli_process("report", a, b, "-o", tmp_path / "rep", "--names", "dilated,shifted")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "dilated" in html and "boxplot_dsc.png" in html
    proc = cli("report", a, b, "-o", tmp_path / "rep")
    assert proc.returncode == 2 and "exists" in proc.stderr
    proc = cli("report", a, a, "-o", tmp_path / "rep2")
    assert proc.returncode == 2 and "--names" in proc.stderr


def test_volume_of_masks(cli, shared_data, tmp_path):
    seg = shared_data / "totalseg" / "example_seg.nii.gz"
    proc = cli("volume", seg, "-o", tmp_path / "v.csv")
    assert proc.returncode == 0, proc.stderr
    arr, geom = mio.read(seg)
    rows = read_csv(tmp_path / "v.csv")
    first = rows[0]
    label = int(first["label"])
    assert float(first["volume"]) == pytest.approx((arr == label).sum() * np.prod(geom.spacing) / 1000)
    assert f"label {label}" in proc.stdout
    npz = lesion_files(shared_data)[0]
    proc = cli("volume", npz)
    assert proc.returncode == 0 and "mL" in proc.stdout
    proc = cli("volume")
    assert proc.returncode == 2 and "mask files" in proc.stderr


def test_a_flipped_reference_on_the_same_grid_is_reoriented_and_scored(cli, shared_data, tmp_path):
    """The shared series' NIfTI labels (rows stored bottom-up) against the same labels in the
    DICOM series' own layout: the same voxels in the world, so they score DSC 100 % after
    reorientation, and the run says so. A shifted grid is still one line naming the case."""
    from medsam.io.geometry import Geometry

    labels, nifti = mio.read(shared_data / "totalseg/example_seg_dicom.nii.gz")
    _, dicom = mio.read(shared_data / "totalseg/example_ct_dicom")
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    (gt / "ct.nii.gz").symlink_to(shared_data / "totalseg/example_seg_dicom.nii.gz")
    mio.write(labels[:, ::-1, :], pred / "ct.nii.gz", dicom)               # the DICOM layout
    done = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "r.csv", "--labels", "1,5,6",
               "--workers", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "case ct: the prediction's axes were flipped along y to the reference's" in done.stderr
    rows = read_csv(tmp_path / "r.csv")
    assert len(rows) == 3 and all(float(r["dsc"]) == 1.0 for r in rows)
    shifted = Geometry(spacing=dicom.spacing, origin=tuple(np.add(dicom.origin, (0, 5.0, 0))),
                       direction=dicom.direction, spacing_known=True)
    mio.write(labels[:, ::-1, :], pred / "ct.nii.gz", shifted, overwrite=True)
    done = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "s.csv", "--workers", "1", "--quiet")
    assert done.returncode == 1 and "case ct: prediction origin" in done.stderr


def test_subset_scores_the_cases_that_have_predictions(cli, lesion_folders, tmp_path):
    gt, pred, _ = lesion_folders
    missing = sorted(pred.iterdir())[0]
    missing.unlink()
    done = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "r.csv", "--quiet")
    assert done.returncode == 1 and "no prediction" in done.stderr and "--subset" in done.stderr
    done = cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "r.csv", "--quiet", "--subset")
    assert done.returncode == 0, done.stderr
    name = missing.name.removesuffix(".nii.gz")
    assert f"1 reference case(s) have no prediction and are not scored: {name}" in done.stderr
    assert len({r["case"] for r in read_csv(tmp_path / "r.csv")}) == 3
