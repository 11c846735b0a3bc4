"""`medsam segment` run as a real subprocess with a small checkpoint written by the test
(random LiteMedSAM weights: fast, and deterministic given the seed)."""

import csv
import json
import shutil

import numpy as np
import pytest

from medsam import io

pytestmark = pytest.mark.slow

DICOM = "totalseg/example_ct_dicom"
MR = "monai_testing/anatomical.nii"
PNG = "jsrt_scr_cxr/images/JPCLN001.png"
MAMMO = "medficientsam_mammo/2DBox_Mammography_demo.npz"
RECIST = "medsam2_recist/CT_Lesion_000001_02_01_008-023.npz"


@pytest.fixture(scope="module")
def model(checkpoint):
    from medsam import load_model

    return load_model(checkpoint)


def _python_api(model, path, prompts, **kwargs):
    from medsam.segmentation.cases import load_case
    from medsam.segmentation.medsam_segmenter import segment_image

    case = load_case(path)
    return segment_image(case.image, case.geometry, prompts, model, **kwargs)


def test_nifti_volume_matches_python_api(same_place, cli, shared_data, tmp_path, checkpoint, model):
    from medsam.segmentation import BoxPrompt

    out = tmp_path / "mr_seg.nii.gz"
    r = cli("segment", shared_data / MR, "-o", out, "--box", "5,8,12,28,34,13",
            "--checkpoint", checkpoint, "--modality", "mr")
    assert r.returncode == 0, r.stderr
    labels, g = io.read(out)
    image, ig = io.read(shared_data / MR)
    assert labels.shape == image.shape and same_place(g, ig) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1}
    zs = np.flatnonzero(labels.any(axis=(1, 2)))
    assert zs.size == 0 or (zs.min() >= 12 and zs.max() <= 13)     # inside the 3D box's slices
    expected = _python_api(model, shared_data / MR, [BoxPrompt((5, 8, 12, 28, 34, 13))], modality="mr")
    np.testing.assert_array_equal(labels, expected)
    assert "label 1" in r.stdout and ("mL" in r.stdout or "empty" in r.stdout)


def test_dicom_folder_world_box_and_modality_from_tag(same_place, cli, shared_data, tmp_path, checkpoint):
    ct, g = io.read(shared_data / DICOM)
    pixel = [150, 160, 9, 330, 300, 9]            # one slice: one encoder pass per run
    out_pix, out_world = tmp_path / "pix.nii.gz", tmp_path / "world.nii.gz"
    r = cli("segment", shared_data / DICOM, "-o", out_pix, "--box", ",".join(map(str, pixel)),
            "--checkpoint", checkpoint)                           # CT known from the DICOM tag
    assert r.returncode == 0, r.stderr
    labels, lg = io.read(out_pix)
    assert labels.shape == ct.shape and same_place(lg, g)
    assert not labels[:9].any() and not labels[10:].any()
    # the same box in RAS millimetres (as 3D Slicer shows it) gives the same mask
    a = g.index_to_world([9, 160, 150])
    b = g.index_to_world([9, 300, 330])
    ras = [-a[0], -a[1], a[2], -b[0], -b[1], b[2]]
    r = cli("segment", shared_data / DICOM, "-o", out_world, "--box", ",".join(repr(float(v)) for v in ras),
            "--world", "ras", "--checkpoint", checkpoint)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(io.read(out_world)[0], labels)


def test_png_two_boxes_overlay(cli, shared_data, tmp_path, checkpoint, model):
    from medsam.segmentation import BoxPrompt

    src = tmp_path / "cxr.png"
    shutil.copy(shared_data / PNG, src)
    r = cli("segment", src, "--box", "100,200,450,800", "--box", "560,200,900,800",
            "--checkpoint", checkpoint, "--overlay")
    assert r.returncode == 0, r.stderr
    labels, g = io.read(tmp_path / "cxr_seg.png")                 # default name beside the input
    assert labels.shape == (1024, 1024) and set(np.unique(labels)) <= {0, 1, 2}
    overlay, _ = io.read(tmp_path / "cxr_seg_overlay.png")
    assert overlay.shape == (1024, 1024, 3)
    expected = _python_api(model, src, [BoxPrompt((100, 200, 450, 800), 1), BoxPrompt((560, 200, 900, 800), 2)])
    np.testing.assert_array_equal(labels, expected)
    assert "pixels" in r.stdout


def test_npz_cases_carry_their_boxes_and_batch(same_place, cli, shared_data, tmp_path, checkpoint):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(shared_data / MAMMO, cases / "mammo.npz")
    rec = io.read_npz(shared_data / RECIST)
    gt = rec.gts > 0
    ys, xs = np.nonzero(gt[8])
    np.savez(cases / "lesion.npz", imgs=rec.image, spacing=np.load(shared_data / RECIST)["spacing"],
             boxes=np.array([[xs.min(), ys.min(), 8, xs.max(), ys.max(), 9]]))
    (cases / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "segs"
    r = cli("segment", cases, "-o", out, "--checkpoint", checkpoint)
    assert r.returncode == 1                                       # one bad case
    assert "broken" in r.stderr and "segmented 2 of 3 cases" in r.stdout
    segs = np.load(out / "mammo.npz")["segs"]
    assert segs.shape == (2604, 1726) and set(np.unique(segs)) <= {0, 1, 2, 3, 4}
    lesion, lg = io.read(out / "lesion.npz")
    assert lesion.shape == rec.image.shape and same_place(lg, io.read(cases / "lesion.npz")[1])
    assert lg.spacing == pytest.approx(rec.geometry.spacing)
    assert not lesion[:8].any() and not lesion[10:].any()
    rows = list(csv.DictReader(open(out / "segment_times.csv")))
    assert [(row["case"], row["status"]) for row in rows] == [
        ("broken", "failed"), ("lesion", "ok"), ("mammo", "ok")]
    objects = list(csv.DictReader(open(out / "segment_objects.csv")))   # every object's size and quality
    assert [row["case"] for row in objects] == ["lesion"] + ["mammo"] * 4
    assert all(0 < float(row["predicted_iou"]) <= 1.2 for row in objects)
    assert objects[0]["slices"] == "2" and float(objects[0]["volume"]) > 0
    assert not (out / "broken.png").exists()


def test_plain_mode_and_prompts_file(cli, shared_data, tmp_path, checkpoint):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"box": [5, 8, 28, 34], "slice": 12, "label": 4, "name": "brain"}]))
    out = tmp_path / "plain.nrrd"
    r = cli("segment", shared_data / MR, "-o", out, "--prompts", prompts, "--checkpoint", checkpoint,
            "--modality", "mr", "--mode", "plain")
    # plain mode needs a z-range: a 2D box with a key slice has none
    assert r.returncode != 0 and not out.exists()
    prompts.write_text(json.dumps([{"box": [5, 8, 11, 28, 34, 12], "label": 4, "name": "brain"}]))
    r = cli("segment", shared_data / MR, "-o", out, "--prompts", prompts, "--checkpoint", checkpoint,
            "--modality", "mr", "--mode", "plain")
    assert r.returncode == 0, r.stderr
    labels, _ = io.read(out)
    assert set(np.unique(labels)) <= {0, 4} and "(brain)" in r.stdout


@pytest.mark.parametrize("make_args,message", [
    (lambda d, t: [t / "missing.nii.gz", "--box", "1,1,5,5"], "no such file"),
    (lambda d, t: [d / PNG, "--box", "0,0,2000,50"], "outside the image"),
])
def test_bad_input_exit_2_without_output(cli, shared_data, tmp_path, checkpoint, make_args, message):
    """One real process per kind of refusal (a missing input, a box the library refuses);
    the other bad inputs: tests/segmentation/test_batch.py."""
    out = tmp_path / "out" / "mask.nii.gz"
    r = cli("segment", *make_args(shared_data, tmp_path), "-o", out, "--checkpoint", checkpoint)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsam: error:") and message in lines[0], r.stderr
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_existing_output_needs_overwrite(cli, shared_data, tmp_path, checkpoint):
    out = tmp_path / "m.png"
    out.write_bytes(b"keep me")
    r = cli("segment", shared_data / PNG, "-o", out, "--box", "100,200,450,800", "--checkpoint", checkpoint)
    assert r.returncode == 2 and "--overwrite" in r.stderr and out.read_bytes() == b"keep me"
    r = cli("segment", shared_data / PNG, "-o", out, "--box", "100,200,450,800", "--checkpoint",
            checkpoint, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert io.read(out)[0].shape == (1024, 1024)


def test_missing_checkpoint(cli, shared_data, tmp_path):
    r = cli("segment", shared_data / PNG, "-o", tmp_path / "m.png", "--box", "100,200,450,800",
            "--checkpoint", tmp_path / "nope.pth")
    assert r.returncode == 2 and "nope.pth" in r.stderr and not (tmp_path / "m.png").exists()
