"""Values that would make a result silently wrong, tried on every path that takes them:
each is refused with one line naming the file (or option) and the problem, exit 2 (1 for
the cases of a batch), and nothing is written. Generated over formats and fields.

Each error path is run once as a real ``medsam`` process (exit status, the one line);
the variants of it (every format, field, value) are checked in-process, against the
library function that refuses them or the parser, which is where the work is."""

import csv
import json
import shutil
import struct

import numpy as np
import pytest

from medsam import io


def one_error_line(result, *parts):
    """One error line (ours, ``medsam: error:``, or an option's, ``medsam CMD: error:``)."""
    import re

    errors = [line for line in result.stderr.strip().splitlines()
              if re.match(r"^medsam( \w+)?: error:", line)]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert str(part) in errors[0], (part, errors[0])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --- number options: never NaN or infinite ---------------------------------------------

def test_a_non_finite_number_option_is_one_line_and_exit_2(cli, tmp_path):
    r = cli("segment", "--margin=nan", "x", cwd=tmp_path)
    assert r.returncode == 2
    one_error_line(r, "argument --margin: expected a finite number, got 'nan'")
    assert "usage:" not in r.stderr            # one line, not argparse's usage block
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
@pytest.mark.parametrize("command,option", [("evaluate", "--tolerance"), ("experts", "--tolerance"),
                                            ("compare", "--alpha"), ("segment", "--margin"),
                                            ("serve", "--max-memory-gb"), ("volume", "--confidence")])
def test_non_finite_number_options_are_refused(capsys, command, option, value):
    from medsam.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, f"{option}={value}", "x"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"medsam {command}: error: argument {option}: expected a finite number, got '{value}' "
                   f"(see `medsam {command} --help`)\n")


def test_a_nan_tolerance_scores_nothing(cli, shared_data, tmp_path):
    """Identical masks would score NSD 0 at a NaN tolerance; the library refuses it too."""
    from medsam.errors import InputError
    from medsam.evaluation.runner import EvaluateConfig
    from medsam.metrics import normalized_surface_distance

    masks = shared_data / "jsrt_scr_cxr/masks"
    r = cli("evaluate", "--pred", masks, "--gt", masks, "-o", tmp_path / "r.csv", "--tolerance", "nan")
    assert r.returncode == 2 and not (tmp_path / "r.csv").exists()
    with pytest.raises(InputError, match="NSD tolerance must be a finite number >= 0 mm, got nan"):
        EvaluateConfig(tolerance=float("nan"))
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    with pytest.raises(ValueError, match="finite"):
        normalized_surface_distance(mask, mask, (1.0, 1.0), tolerance=float("nan"))


# --- thresholds that empty a mask ---------------------------------------------------------

def test_a_threshold_that_empties_the_masks_is_refused(cli, shared_data, tmp_path):
    """JSRT masks hold 0 and 255: at 300 both would be empty and score a perfect 1."""
    masks = shared_data / "jsrt_scr_cxr/masks_heart"
    r = cli("evaluate", "--pred", masks, "--gt", masks, "-o", tmp_path / "r.csv", "--threshold", "300",
            "--quiet", "--workers", "1")
    assert r.returncode == 1, r.stderr
    assert "the threshold 300 empties this mask (values 0..255" in r.stderr
    assert not (tmp_path / "r.csv").exists()
    ok = cli("evaluate", "--pred", masks, "--gt", masks, "-o", tmp_path / "r.csv", "--threshold", "127",
             "--quiet", "--workers", "1")
    assert ok.returncode == 0, ok.stderr


# --- spacing: zero, negative, not finite, in every format ---------------------------------

def _nifti(path, value):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 5), np.uint8)), str(path))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<f", raw, 80, value)   # pixdim[1]: the x voxel size
    path.write_bytes(bytes(raw))


def _text_header(path, old, new):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 5), np.uint8)), str(path), False)
    data = path.read_bytes()
    assert old in data, data[:300]
    path.write_bytes(data.replace(old, new))


def _npz(path, value):
    np.savez(path, imgs=np.ones((3, 4, 5), np.uint8), spacing=np.array([value, 1.0, 1.0]))


BAD_SPACINGS = {"zero": 0.0, "negative": -2.0, "nan": float("nan"), "inf": float("inf")}


def _write_bad(fmt, path, value):
    text = f"{value:g}".encode()
    if fmt == ".nii":
        _nifti(path, value)
    elif fmt == ".mha":
        _text_header(path, b"ElementSpacing = 1 1 1", b"ElementSpacing = " + text + b" 1 1")
    elif fmt == ".nrrd":
        _text_header(path, b"space directions: (1,0,0)", b"space directions: (" + text + b",0,0)")
    else:
        _npz(path, value)


def test_a_voxel_size_of_zero_is_one_line_and_exit_2(cli, tmp_path):
    path = tmp_path / "bad.nii"
    _write_bad(".nii", path, 0.0)
    r = cli("volume", path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    one_error_line(r, path, "not a voxel size")
    assert "mL" not in r.stdout


@pytest.mark.parametrize("kind", list(BAD_SPACINGS))
@pytest.mark.parametrize("fmt", [".nii", ".mha", ".nrrd", ".npz"])
def test_a_voxel_size_that_is_not_one_is_refused(tmp_path, fmt, kind):
    from medsam.errors import InputError

    path = tmp_path / f"bad{fmt}"
    _write_bad(fmt, path, BAD_SPACINGS[kind])
    if fmt == ".nrrd" and kind == "negative":   # the axis vector (-2,0,0): a flipped axis, 2 mm
        assert io.read(path)[1].spacing == (1.0, 1.0, 2.0)
        return
    with pytest.raises(InputError) as error:
        io.read(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message
    assert "not a voxel size" in message or "malformed" in message or "not a list of" in message


def test_a_dicom_pixel_spacing_of_zero_is_refused(cli, shared_data, tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(shared_data / "totalseg/example_ct_dicom", folder)
    first = sorted(folder.iterdir())[0]
    data = bytearray(first.read_bytes())
    at = data.find(b"\x28\x00\x30\x00DS")
    length = struct.unpack("<H", data[at + 6:at + 8])[0]
    data[at + 8:at + 8 + length] = b"0\\0".ljust(length, b" ")
    first.write_bytes(bytes(data))
    r = cli("volume", folder)
    assert r.returncode == 2
    one_error_line(r, first, "PixelSpacing 0 0 is not a voxel size")


# --- world boxes on images without geometry -----------------------------------------------

def test_world_boxes_on_a_png_are_refused(cli, shared_data, tmp_path):
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "10,10,100,100",
            "--world", "-o", tmp_path / "s.png")
    assert r.returncode == 2
    one_error_line(r, "world millimetres", "no physical geometry")
    assert list(tmp_path.iterdir()) == []


# --- result tables: metric ranges and extra values ----------------------------------------

HEADER = ["task", "method", "case", "label", "dsc", "nsd", "hd95", "gt_voxels", "pred_voxels",
          "gt_volume", "pred_volume", "volume_unit"]


def _table(path, bad_column=None, bad_value=None, extra=False):
    rows = []
    for i in range(6):
        row = ["t", "m", f"c{i}", "1", "0.9", "0.8", "1.0", "10", "10", "1.0", "1.1", "mL"]
        if i == 3 and bad_column:
            row[HEADER.index(bad_column)] = bad_value
        if i == 3 and extra:
            row.append("surplus")
        rows.append(row)
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_metric_out_of_range_is_one_line_and_exit_2(cli, tmp_path, command):
    bad = _table(tmp_path / "bad.csv", "nsd", "85")
    good = _table(tmp_path / "good.csv")
    args = [bad, good, "--names", "a,b", "-o", tmp_path / "out"] if command == "compare" \
        else [bad, "-o", tmp_path / "out"]
    r = cli(command, *args)
    assert r.returncode == 2, r.stdout
    one_error_line(r, f"{bad}, line 5", "nsd 85 is outside [0, 1]; medsam tables hold fractions: "
                                        "divide percentages by 100")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("column,value,words", [
    ("dsc", "2.5", "dsc 2.5 is outside [0, 1]"), ("dsc", "-0.1", "dsc -0.1 is outside [0, 1]"),
    ("nsd", "85", "divide percentages by 100"), ("dsc", "nan", "dsc nan is outside"),
    ("hd95", "-1", "hd95 -1 is not a size"), ("gt_volume", "nan", "gt_volume nan is not a size")])
def test_metric_values_out_of_range_are_refused(tmp_path, column, value, words):
    from medsam.errors import InputError
    from medsam.evaluation.results import load_tables, read_results

    bad = _table(tmp_path / "bad.csv", column, value)
    good = _table(tmp_path / "good.csv")
    for read in (lambda: read_results(bad), lambda: load_tables([bad, good], ["a", "b"])):
        with pytest.raises(InputError) as error:
            read()
        assert str(error.value).startswith(f"{bad}, line 5: ") and words in str(error.value)


def test_a_result_row_with_extra_values_is_refused(cli, tmp_path):
    bad = _table(tmp_path / "bad.csv", extra=True)
    r = cli("report", bad, "-o", tmp_path / "out")
    assert r.returncode == 2
    one_error_line(r, f"{bad}, line 5", "more than the header's 12 columns")


# --- prompts: extra CSV values, duplicate labels --------------------------------------------

def test_a_prompts_row_with_extra_values_is_refused(cli, shared_data, tmp_path):
    prompts = tmp_path / "p.csv"
    prompts.write_text("case,x0,y0,x1,y1\nJPCLN001,10,10,100,100\nJPCLN001,200,200,300,300,7\n")
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--prompts", prompts,
            "-o", tmp_path / "s.png")
    assert r.returncode == 2
    one_error_line(r, f"{prompts}: line 3 has 6 values for 5 columns")
    assert not (tmp_path / "s.png").exists()


def _one_label_twice(path):
    if path.suffix == ".json":
        path.write_text(json.dumps([{"box": [10, 10, 100, 100], "label": 2},
                                    {"box": [200, 200, 300, 300], "label": 2}]))
    else:
        path.write_text("case,x0,y0,x1,y1,label\nJPCLN001,10,10,100,100,2\nJPCLN001,200,200,300,300,2\n")
    return path


def test_two_prompts_with_one_label_are_one_line_and_exit_2(cli, shared_data, tmp_path):
    prompts = _one_label_twice(tmp_path / "p.json")
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--prompts", prompts,
            "-o", tmp_path / "s.png")
    assert r.returncode == 2
    one_error_line(r, prompts, "prompts 1 and 2 both have label 2")
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_two_prompts_with_one_label_are_refused(tmp_path, suffix):
    from medsam.errors import InputError
    from medsam.segmentation import load_prompts

    prompts = _one_label_twice(tmp_path / f"p{suffix}")
    with pytest.raises(InputError, match="prompts 1 and 2 both have label 2") as error:
        load_prompts(prompts).for_case("JPCLN001")
    assert str(prompts) in str(error.value)


# --- messages: a DICOM series without an id, a file where a folder belongs -------------------

@pytest.fixture
def two_series(shared_data, tmp_path):
    """The TotalSegmentator CT series (anonymised: no SeriesInstanceUID) and a 3-slice MR
    series written here, in one folder. GDCM's DICOM writer sets the process's locale to
    "C" (ASCII) and leaves it so: the locale is put back, or every later subprocess test
    would fail to decode its output."""
    import locale

    import SimpleITK as sitk

    folder = tmp_path / "two_series"
    shutil.copytree(shared_data / "totalseg/example_ct_dicom", folder)
    ctype = locale.setlocale(locale.LC_CTYPE)
    volume = sitk.GetImageFromArray(np.zeros((3, 32, 32), np.int16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(3):
        s = volume[:, :, z]
        for key, value in [("0020|000e", "1.2.826.0.1.3680043.2.1125.42"),
                           ("0020|000d", "1.2.826.0.1.3680043.2.1125.41"), ("0008|0060", "MR"),
                           ("0020|0032", f"0\\0\\{z * 2.0}"), ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0028|0030", "1\\1"), ("0020|0013", str(z + 1)),
                           ("0008|0018", f"1.2.826.0.1.3680043.2.1125.42.{z}")]:
            s.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"mr{z}.dcm"))
        writer.Execute(s)
    locale.setlocale(locale.LC_CTYPE, ctype)
    return folder


def test_a_series_without_an_id_can_be_picked_by_its_number(cli, two_series, tmp_path, checkpoint):
    r = cli("volume", two_series)
    assert r.returncode == 2
    one_error_line(r, "holds 2 DICOM series", '"#1"', "#1 (no series id) (20 files, CT",
                   "#2 1.2.826.0.1.3680043.2.1125.42 (3 files, MR)")
    import locale

    ctype = locale.setlocale(locale.LC_CTYPE)
    image, _ = io.read(two_series, series_id="#1")
    assert image.shape == (20, 512, 512)
    assert io.read(two_series, series_id="#2")[0].shape == (3, 32, 32)
    assert locale.setlocale(locale.LC_CTYPE) == ctype       # reading leaves the locale alone
    r = cli("segment", two_series, "--series", "#2", "--box", "2,2,20,20", "--slice", "1",
            "--modality", "mr", "--checkpoint", checkpoint, "-o", tmp_path / "mr.nii.gz")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("command", ["evaluate", "experts", "segment"])
def test_a_file_where_a_folder_belongs_is_named_as_such(cli, shared_data, tmp_path, command):
    a_file = shared_data / "jsrt_scr_cxr/masks/JPCLN001.png"
    masks = shared_data / "jsrt_scr_cxr/masks"
    args = {"evaluate": ["--pred", masks, "--gt", a_file, "-o", tmp_path / "r.csv"],
            "experts": ["--rater", f"a={masks}", "--rater", f"b={a_file}", "-o", tmp_path / "x"],
            "segment": [shared_data / "totalseg/example_ct_sm.nii.gz", "--box", "1,1,5,5", "--slice", "3",
                        "--modality", "ct", "-o", tmp_path / "taken" / "x.nii.gz"]}[command]
    if command == "segment":
        (tmp_path / "taken").write_text("a file")
    r = cli(command, *args)
    assert r.returncode == 2
    one_error_line(r, "is not a folder" if command == "segment" else "is a file, not a")
    assert "does not exist" not in r.stderr
