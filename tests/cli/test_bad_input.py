"""Bad input, tried as an unlucky or hostile user would: every command answers with one
line naming the file and the problem, exit 2 (1 for a batch with failed cases), no
output or temporary file left behind, inputs untouched; nothing is silently wrong."""

import hashlib
import shutil

import numpy as np
import pytest

from medsam import io


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result, *parts):
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("medsam: error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert str(part) in errors[0], (part, errors[0])
    assert "Traceback" not in result.stderr


# --- evaluate: nothing silently wrong ------------------------------------------------

def write_pair(folder, name, array, geometry):
    folder.mkdir(exist_ok=True)
    io.write(array, folder / name, geometry)


def test_evaluate_refuses_a_shifted_prediction(cli, tmp_path):
    mask = np.zeros((6, 20, 20), np.uint8)
    mask[2:4, 5:15, 5:15] = 1
    geometry = io.Geometry(spacing=(2.0, 1.0, 1.0), origin=(10.0, 20.0, 30.0))
    write_pair(tmp_path / "gt", "a.nii.gz", mask, geometry)
    shifted = io.Geometry(spacing=(2.0, 1.0, 1.0), origin=(60.0, 20.0, 30.0))
    write_pair(tmp_path / "pred", "a.nii.gz", mask, shifted)
    r = cli("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-o",
            tmp_path / "res.csv", "--quiet", "--workers", "1")
    assert r.returncode == 1
    assert "case a: prediction origin (60, 20, 30) differs from reference origin (10, 20, 30) " \
           "by 50 mm" in r.stderr
    assert not (tmp_path / "res.csv").exists()
    assert "partial" not in r.stderr  # no other case, no partial file
    assert not (tmp_path / "res.partial.csv").exists()


def test_evaluate_refuses_a_turned_prediction(cli, tmp_path):
    mask = np.zeros((6, 20, 20), np.uint8)
    mask[2:4, 5:15, 5:15] = 1
    write_pair(tmp_path / "gt", "a.nii.gz", mask, io.Geometry(spacing=(1.0, 1.0, 1.0)))
    flipped = io.Geometry(spacing=(1.0, 1.0, 1.0), direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1))
    write_pair(tmp_path / "pred", "a.nii.gz", mask, flipped)
    write_pair(tmp_path / "gt", "b.nii.gz", mask, io.Geometry(spacing=(1.0, 1.0, 1.0)))
    write_pair(tmp_path / "pred", "b.nii.gz", mask, io.Geometry(spacing=(1.0, 1.0, 1.0)))
    r = cli("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-o",
            tmp_path / "res.csv", "--quiet", "--workers", "1")
    assert r.returncode == 1
    assert "case a: prediction direction" in r.stderr and "not aligned" in r.stderr
    # the message names the partial results exactly when they exist
    assert f"results of the other cases are in {tmp_path / 'res.partial.csv'}" in r.stderr
    assert (tmp_path / "res.partial.csv").is_file()
    # the partial results are not a report's input: one line naming the failures' list
    r = cli("report", str(tmp_path / "res.partial.csv"), "-o", str(tmp_path / "report"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "res.partial.csv: INCOMPLETE: 1 of 2 cases failed (listed in res.failed.csv)" in r.stderr
    assert "--allow-incomplete" in r.stderr
    assert not (tmp_path / "report").exists()
    # the mark is in the table, not its name: renamed, it is refused the same way
    renamed = tmp_path / "renamed.csv"
    renamed.write_bytes((tmp_path / "res.partial.csv").read_bytes())
    r = cli("compare", str(renamed), str(renamed), "--names", "a,b", "-o", str(tmp_path / "cmp"))
    assert r.returncode == 2 and "renamed.csv: INCOMPLETE" in r.stderr
    r = cli("report", str(renamed), "-o", str(tmp_path / "report"), "--allow-incomplete")
    assert r.returncode == 0, r.stderr


def test_evaluate_refuses_label_sets_with_nothing_in_common(cli, shared_data, tmp_path):
    """The JSRT heart reference is stored as 255; a prediction written by medsam as 1."""
    ref = shared_data / "jsrt_scr_cxr/masks_heart/JPCLN001.png"
    (tmp_path / "gt").mkdir()
    shutil.copy(ref, tmp_path / "gt" / "JPCLN001.png")
    heart = io.read(ref)[0] > 0
    write_pair(tmp_path / "pred", "JPCLN001.png", heart.astype(np.uint8), None)
    r = cli("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-o",
            tmp_path / "res.csv", "--quiet", "--workers", "1")
    assert r.returncode == 1
    assert "prediction labels {1} and reference labels {255} have no value in common" in r.stderr
    r = cli("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-o",
            tmp_path / "res.csv", "--quiet", "--workers", "1", "--binary")
    assert r.returncode == 0, r.stderr
    assert "100.0" in r.stdout  # identical masks once binarised


# --- segment: clashes, reruns, modes, non-finite boxes -------------------------------

def test_batch_name_clash_is_refused_before_work(cli, shared_data, tmp_path, checkpoint):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / "a.png")
    shutil.copy(shared_data / "kvasir_seg_subset/images/cju0qoxqj9q6s0835b43399p4.jpg",
                cases / "a.jpg")
    before = snapshot(cases)
    r = cli("segment", cases, "-o", tmp_path / "segs", "--box", "10,10,100,100",
            "--checkpoint", checkpoint, "--overwrite")
    assert r.returncode == 2
    one_error_line(r, cases / "a.jpg", cases / "a.png", tmp_path / "segs" / "a.png")
    assert not (tmp_path / "segs").exists() and snapshot(cases) == before


def test_batch_rerun_keeps_the_times_csv(cli, shared_data, tmp_path, checkpoint):
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / "a.png")
    args = ("segment", cases, "-o", tmp_path / "segs", "--box", "10,10,100,100",
            "--checkpoint", checkpoint)
    assert cli(*args).returncode == 0
    before = snapshot(tmp_path / "segs")
    r = cli(*args)
    assert r.returncode == 2
    one_error_line(r, tmp_path / "segs" / "segment_times.csv", "exists")
    assert snapshot(tmp_path / "segs") == before


def test_plain_mode_with_a_slice_box_is_one_line(cli, shared_data, tmp_path, checkpoint):
    r = cli("segment", shared_data / "totalseg/example_ct_sm.nii.gz", "--box", "70,29,92,51",
            "--slice", "9", "--mode", "plain", "--modality", "ct", "--checkpoint", checkpoint,
            "-o", tmp_path / "seg.nii.gz")
    assert r.returncode == 2
    one_error_line(r, "plain 3D mode", "needs a 3D box")
    assert list(tmp_path.iterdir()) == []


def test_a_non_finite_box_is_one_line_and_exit_2(cli, shared_data, tmp_path):
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "nan,1,20,20",
            "-o", tmp_path / "seg.png")
    assert r.returncode == 2
    one_error_line(r, "box 'nan,1,20,20'", "finite")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("box", ["nan,1,20,20", "1,1,inf,20", "1,2,3"])
def test_non_finite_or_short_box(box):
    from medsam.errors import InputError
    from medsam.segmentation import parse_box_text

    with pytest.raises(InputError) as error:
        parse_box_text(box)
    assert f"box {box!r}" in str(error.value)
    assert ("finite" if len(box.split(",")) == 4 else "got 3") in str(error.value)


def test_prompts_file_with_nan_names_the_file_and_entry(cli, shared_data, tmp_path):
    prompts = tmp_path / "p.json"
    prompts.write_text('[{"box": [1, 2, 30, 40]}, {"box": [NaN, 2, 30, 40]}]')
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--prompts", prompts,
            "-o", tmp_path / "seg.png")
    assert r.returncode == 2
    one_error_line(r, f"{prompts}: prompt 2", "finite")


def test_batch_goes_on_past_a_decompression_bomb(cli, shared_data, tmp_path, checkpoint):
    from PIL import Image

    cases = tmp_path / "cases"
    cases.mkdir()
    Image.new("1", (20000, 12000)).save(cases / "bomb.png")   # 29 kB, 240 Mpixel
    shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / "good.png")
    r = cli("segment", cases, "-o", tmp_path / "segs", "--box", "10,10,100,100",
            "--checkpoint", checkpoint)
    assert r.returncode == 1
    assert "segmented 1 of 2 cases" in r.stdout
    assert f"medsam: failed: {cases / 'bomb.png'}: too large to read safely" in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "segs").iterdir()) == ["good.png", "segment_objects.csv",
                                                                     "segment_times.csv"]


def test_output_whose_folder_is_a_file_is_refused_before_work(cli, shared_data, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "1,1,50,50",
            "-o", tmp_path / "taken" / "seg.png")
    assert r.returncode == 2
    one_error_line(r, tmp_path / "taken" / "seg.png", "is not a folder")
    assert "model" not in r.stderr          # refused before the model was loaded
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "1,1,50,50",
            "-o", tmp_path)
    assert r.returncode == 2
    one_error_line(r, "is a folder, not an output file")


@pytest.mark.parametrize("command", ["evaluate", "compare", "volume", "report"])
def test_unwritable_output_is_refused_before_work(cli, shared_data, tmp_path, command):
    import csv

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    table = tmp_path / "r.csv"
    with open(table, "w", newline="") as fh:
        csv.writer(fh).writerows([
            ["task", "method", "case", "label", "dsc", "nsd", "hd95", "gt_voxels", "pred_voxels",
             "gt_volume", "pred_volume", "volume_unit"],
            *[["t", "m", f"c{i}", "1", "0.9", "0.8", "1.0", "10", "10", "1.0", "1.1", "mL"]
              for i in range(5)]])
    masks = shared_data / "jsrt_scr_cxr/masks"
    target = blocker / "out"
    args = {"evaluate": ["--pred", masks, "--gt", masks, "-o", target / "r.csv", "--quiet"],
            "compare": [table, table, "--names", "a,b", "-o", target],
            "volume": [shared_data / "totalseg/example_seg.nii.gz", "-o", target / "v.csv"],
            "report": [table, "-o", target]}[command]
    before = snapshot(tmp_path)
    r = cli(command, *args)
    assert r.returncode == 2
    one_error_line(r, str(target), f"{blocker} is not a folder")
    assert snapshot(tmp_path) == before


def test_read_only_file_system_is_refused_before_work(shared_data, tmp_path):
    """A real read-only mount (a tmpfs in a private mount namespace)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src"
    mount = tmp_path / "ro"
    mount.mkdir()
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {mount}"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount can be made here: {probe.stderr.strip()}")
    out = mount / "seg.png"
    command = (f"mount -t tmpfs -o ro tmpfs {mount} && {sys.executable} -m medsam segment "
               f"{shared_data / 'jsrt_scr_cxr/images/JPCLN001.png'} --box 1,1,50,50 -o {out}")
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    one_error_line(r, out, f"no permission to write in {mount}")
    assert "model" not in r.stderr


def test_a_one_pixel_image_segments(cli, tmp_path, checkpoint):
    """(other tiny and extreme shapes: tests/segmentation/test_batch.py)"""
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray(np.full((1, 1), 200, np.uint8)).save(path)
    r = cli("segment", path, "--box", "0,0,1,1", "--checkpoint", checkpoint, "-o", tmp_path / "s.png")
    assert r.returncode == 0, r.stderr
    assert io.read(tmp_path / "s.png")[0].shape == (1, 1)


@pytest.mark.parametrize("command", ["segment", "evaluate", "volume"])
def test_a_file_system_that_refuses_files_is_found_before_work(cli, shared_data, command):
    """/proc is mounted read-write and root may write there, yet it creates no files: the
    up-front check tries, so the model never runs for an output that cannot be written."""
    masks = shared_data / "jsrt_scr_cxr/masks"
    args = {"segment": [shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "1,1,50,50",
                        "-o", "/proc/a.png"],
            "evaluate": ["--pred", masks, "--gt", masks, "-o", "/proc/r.csv", "--quiet"],
            "volume": [shared_data / "totalseg/example_seg.nii.gz", "-o", "/proc/v.csv"]}[command]
    r = cli(command, *args)
    assert r.returncode == 2
    one_error_line(r, "/proc/", "cannot be written: /proc refuses new files")
    assert "model" not in r.stderr
