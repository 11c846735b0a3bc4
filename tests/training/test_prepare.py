"""`medsam prepare` on real data from ../shared/data."""

import csv

import numpy as np

from medsam.datasets.description import parse_description
from medsam.training.manifest import read_manifest
from medsam.training.prepare import prepare

from .conftest import jsrt_dataset, recist_dataset, write_description


def test_jsrt_manifest_entries_match_the_masks(prepared_jsrt, shared_data):
    rows = read_manifest(prepared_jsrt)
    assert len(rows) == 18 * 3  # every image has both lungs and the heart
    by_case = {}
    for r in rows:
        by_case.setdefault(r["case"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_case.values())  # no case in two splits
    counts = [sum(next(iter(s)) == k for s in by_case.values())
              for k in ("train", "tune", "validation")]
    assert counts == [14, 2, 2]
    row = next(r for r in rows if r["case"] == "JPCLN001" and r["name"] == "heart")
    with np.load(prepared_jsrt / row["file"]) as data:
        image, labels = data["image"], data["labels"]
    assert image.dtype == np.uint8 and image.shape == (1024, 1024)  # native size, grey
    from medsam.io import read

    raw, _ = read(shared_data / "jsrt_scr_cxr/masks_labels/JPCLN001.png")
    heart = labels == 3
    assert np.array_equal(heart, raw == 3)
    ys, xs = np.nonzero(heart)
    assert (row["x0"], row["y0"], row["x1"], row["y1"]) == (xs.min(), ys.min(), xs.max(), ys.max())
    assert row["pixels"] == heart.sum() and row["slice"] == -1


def test_3d_volumes_become_slices_with_exclusions(tmp_path, shared_data):
    desc = parse_description({"datasets": [recist_dataset()]}, shared_data)
    prepare(desc, tmp_path / "a", progress=False)
    rows = read_manifest(tmp_path / "a")
    assert rows and all(r["slice"] >= 0 and r["pixels"] >= 100 for r in rows)
    case = "CT_Lesion_000001_02_01_008-023"
    with np.load(shared_data / f"medsam2_recist/{case}.npz") as data:
        gts = data["gts"]
    mine = sorted(r["slice"] for r in rows if r["case"] == case)
    # slices whose lesion area reaches 100 px (the lesion is one 3D component > 1000 voxels)
    assert mine == [k for k in range(len(gts)) if (gts[k] > 0).sum() >= 100]
    # along another axis, slices are (y) rows of the volume
    desc_y = parse_description({"datasets": [recist_dataset(axis=1)]}, shared_data)
    prepare(desc_y, tmp_path / "b", progress=False)
    row = read_manifest(tmp_path / "b")[0]
    assert (row["height"], row["width"]) == (gts.shape[0], gts.shape[2])
    # a voxel limit above every lesion excludes all of them
    big = parse_description({"datasets": [recist_dataset(min_voxels=10**7)]}, shared_data)
    prepare(big, tmp_path / "c", progress=False)
    assert read_manifest(tmp_path / "c") == []


def test_tiling_resume_extension_and_failures(tmp_path, shared_data, cli):
    # one real image per dataset keeps this quick
    jsrt = jsrt_dataset(images="jsrt_scr_cxr/images/JPCLN00[12].png", tile_size=512)
    desc = write_description(tmp_path, shared_data, [jsrt], seed=1)
    out = tmp_path / "prepared"
    done = cli("prepare", desc, "-o", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "processed 2, reused 0, failed 0" in done.stdout
    rows = read_manifest(out)
    assert {(r["tile_y"], r["tile_x"]) for r in rows} <= {(0, 0), (0, 512), (512, 0), (512, 512)}
    assert all(r["height"] == 512 and r["width"] == 512 for r in rows)
    # extend with a second dataset holding one unreadable file: only the new cases run
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (bad / "x_mask.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    kvasir = {"name": "kvasir", "modality": "endoscopy",
              "images": "kvasir_seg_subset/images/cju0qoxqj9q6s0835b43399p4.jpg",
              "labels": "kvasir_seg_subset/masks/{stem}.jpg", "label_threshold": 127}
    broken = {"name": "broken", "modality": "rgb", "images": str(bad / "x.png"),
              "labels": str(bad / "{stem}_mask.png")}
    desc = write_description(tmp_path, shared_data, [jsrt_dataset(
        images="jsrt_scr_cxr/images/JPCLN00[12].png", tile_size=512), kvasir, broken], seed=1)
    done = cli("prepare", desc, "-o", out, "--no-progress", "-j", "2")
    assert done.returncode == 0, done.stderr
    assert "processed 2, reused 2, failed 1" in done.stdout
    assert "broken/x" in done.stdout
    rows2 = read_manifest(out)
    assert [r for r in rows2 if r["dataset"] == "jsrt"] == rows
    assert [r["name"] for r in rows2 if r["dataset"] == "kvasir"] == ["label_1"]
    with open(out / "failures.csv") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["x"]


def test_bad_descriptions_fail_before_processing(tmp_path, shared_data, cli_process):
    missing = jsrt_dataset(labels="jsrt_scr_cxr/no_such_folder/{stem}.png")
    desc = write_description(tmp_path, shared_data, [missing])
    done = cli_process("prepare", desc, "-o", tmp_path / "o", "--no-progress")
    assert done.returncode == 2
    assert "label files not found" in done.stderr and "no_such_folder" in done.stderr
    assert not (tmp_path / "o").exists()
    nothing = jsrt_dataset(images="jsrt_scr_cxr/images/*.nii")
    desc = write_description(tmp_path, shared_data, [nothing])
    done = cli_process("prepare", desc, "-o", tmp_path / "o", "--no-progress")
    assert done.returncode == 2 and "no image matches" in done.stderr
    absent = jsrt_dataset(images="jsrt_scr_cxr/images/JPCLN001.png",
                          classes={"1": "right_lung", "7": "liver"})
    desc = write_description(tmp_path, shared_data, [absent])
    done = cli_process("prepare", desc, "-o", tmp_path / "o2", "--no-progress")
    assert done.returncode == 2
    assert "labels 7 (liver) are absent from every mask" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_split_group_keeps_a_patient_in_one_split_across_datasets(shared_data, tmp_path):
    """A patient's CT and MR (two datasets of one split group) are in the same split, though
    the two datasets hold different patients (28 CT, 41 MR)."""
    from medsam.datasets.description import load_description

    common = {"case_pattern": "^(STS_\\d+)/", "min_pixels": 10, "min_voxels": 100, "split_group": "sts",
              "cases": ["STS_002", "STS_003", "STS_005", "STS_006", "STS_008", "STS_012"]}
    path = write_description(tmp_path, shared_data, [
        {"name": "ct", "modality": "ct", "images": "ibsi_sts/*/CT_image.nii.gz",
         "labels": "ibsi_sts/{case}/CT_mask.nii.gz", **common},
        {"name": "mr", "modality": "mr", "images": "ibsi_sts/*/MR_T1_image.nii.gz",
         "labels": "ibsi_sts/{case}/MR_T1_mask.nii.gz", **common}], split=[0.5, 0.25, 0.25])
    prepare(load_description(path), tmp_path / "out", workers=0, progress=False)
    splits: dict = {}
    for row in read_manifest(tmp_path / "out"):
        splits.setdefault(row["case"], set()).add((row["dataset"], row["split"]))
    assert set(splits) == set(common["cases"])
    for case, seen in splits.items():
        assert {d for d, _ in seen} == {"ct", "mr"} and len({s for _, s in seen}) == 1, (case, seen)
    assert {s for seen in splits.values() for _, s in seen} == {"train", "tune", "validation"}
