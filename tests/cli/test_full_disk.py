"""Every command that writes, run with its output on a real full (or nearly full) disk:
one line naming the output and the reason, exit status 2, nothing left behind, and
nothing that existed before lost. Generated over the commands and output formats."""


import pytest

from medsam import io
from tests.small_disk import require_small_disk, run_on_small_disk


def one_error_line(run, *parts):
    errors = [line for line in run.stderr.strip().splitlines() if line.startswith("medsam: error:")]
    assert len(errors) == 1, run.stderr
    for part in parts:
        assert str(part) in errors[0], (part, errors[0])
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


@pytest.fixture
def disk(tmp_path):
    require_small_disk(tmp_path)
    return tmp_path / "disk"


@pytest.fixture(scope="module")
def crop(shared_data, tmp_path_factory):
    """4 slices, 64 x 64, of the TotalSegmentator CT (its uncompressed mask: 16 kB)."""
    image, geometry = io.read(shared_data / "totalseg/example_ct_sm.nii.gz")
    path = tmp_path_factory.mktemp("crop") / "crop.nii.gz"
    io.write(image[10:14, 20:84, 20:84], path, io.Geometry(spacing=geometry.spacing))
    return path


def test_the_issue_case_a_short_nifti_write_is_an_error(disk, crop, checkpoint):
    """12 kB free, a 16 kB mask: ITK writes 12 kB and says nothing; the file read back
    is not what was written."""
    out = disk / "out.nii"
    run = run_on_small_disk(disk, ["segment", crop, "--box", "10,10,0,40,40,3", "--modality", "ct",
                                   "--checkpoint", checkpoint, "-o", out], free_kib=12, size_kib=64)
    assert run.returncode == 2, run.stderr
    one_error_line(run, out, "no space left on device")
    assert "voxels" not in run.stdout
    assert run.left == []


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".npz"])
def test_segment_a_volume_onto_a_full_disk(disk, crop, checkpoint, suffix):
    out = disk / f"out{suffix}"
    run = run_on_small_disk(disk, ["segment", crop, "--box", "10,10,0,40,40,3", "--modality", "ct",
                                   "--checkpoint", checkpoint, "-o", out])
    assert run.returncode == 2, run.stderr
    one_error_line(run, out, "no space left on device")
    assert run.left == []


def test_segment_an_image_onto_a_full_disk(disk, shared_data, checkpoint):
    out = disk / "seg.png"
    run = run_on_small_disk(disk, ["segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png",
                                   "--box", "100,100,900,900", "--checkpoint", checkpoint, "-o", out])
    assert run.returncode == 2, run.stderr
    one_error_line(run, out, "no space left on device")
    assert run.left == []


def test_mask_and_overlay_are_committed_together(disk, crop, checkpoint):
    """Room for the mask (one page) but not for the overlay: neither appears, and the
    files they would replace are kept."""
    out = disk / "out.nii.gz"
    before = (f"printf old > {out} && printf old > {disk / 'out_overlay.png'}")
    run = run_on_small_disk(disk, ["segment", crop, "--box", "10,10,0,40,40,3", "--modality", "ct",
                                   "--checkpoint", checkpoint, "-o", out, "--overlay", "--overwrite"],
                            free_kib=12, size_kib=64, before=before)   # 2 pages for the old files
    assert run.returncode == 2, run.stderr
    one_error_line(run, disk / "out_overlay.png", "no space left on device")
    assert run.left == ["out.nii.gz", "out_overlay.png"]   # the old ones, nothing new


def test_batch_onto_a_full_disk_reports_each_case(disk, shared_data, checkpoint, tmp_path):
    import shutil

    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / "a.png")
    out = disk / "segs"
    run = run_on_small_disk(disk, ["segment", cases, "-o", out, "--box", "100,100,900,900",
                                   "--checkpoint", checkpoint])
    assert run.returncode == 2, run.stderr
    one_error_line(run, out, "no space left on device")
    assert "model" not in run.stderr    # the lock file failed first, before any work
    assert run.left == []


def test_batch_that_fills_the_disk_reports_each_case(disk, shared_data, checkpoint, tmp_path):
    """Room for the lock file (one page), none for the masks: each case fails with the
    reason, and so does the times table."""
    import shutil

    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / name)
    out = disk / "segs"
    run = run_on_small_disk(disk, ["segment", cases, "-o", out, "--box", "100,100,900,900",
                                   "--checkpoint", checkpoint], free_kib=4, size_kib=64)
    assert run.returncode == 2, run.stderr
    for name in ("a.png", "b.png"):
        assert f"medsam: failed: {out / name}: cannot be written: no space left on device" in run.stderr
    one_error_line(run, out / "segment_times.csv", "no space left on device")
    assert run.left == []


def _command(name, shared_data, table, out):
    masks = shared_data / "jsrt_scr_cxr/masks"
    drive = shared_data / "drive_fundus" / "test"
    return {
        "evaluate": (["evaluate", "--pred", masks, "--gt", masks, "-o", out / "r.csv", "--quiet",
                      "--workers", "1"], out / "r.csv"),
        "compare": (["compare", table, table, "--names", "a,b", "-o", out], out),
        "volume": (["volume", shared_data / "totalseg/example_seg.nii.gz", "-o", out / "v.csv"],
                   out / "v.csv"),
        "report": (["report", table, "-o", out], out),
        "experts": (["experts", "--rater", f"a={drive / '1st_manual'}", "--rater",
                     f"b={drive / '2nd_manual'}", "--case-pattern", r"^(\d+)_", "--threshold", "127",
                     "-o", out], out),
    }[name]


@pytest.mark.parametrize("command", ["evaluate", "compare", "volume", "report", "experts"])
def test_tables_and_reports_onto_a_full_disk(disk, shared_data, table, command):
    args, named = _command(command, shared_data, table, disk / "out")
    run = run_on_small_disk(disk, args)
    assert run.returncode == 2, run.stderr
    one_error_line(run, "no space left on device")
    assert str(named) in run.stderr
    assert run.left == []


def test_weights_download_onto_a_full_disk(disk):
    """A full cache is named as such, not as a source that failed."""
    from http_server import serve

    home = disk / "home"
    with serve({"/medsam_vit_b.pth": bytes(2_000_000)}) as base:
        run = run_on_small_disk(disk, ["weights", "download", "medsam_vit_b", "--url",
                                       base + "/medsam_vit_b.pth", "--quiet"],
                                before=f"export MEDSAM_HOME={home}")
    assert run.returncode == 2, run.stderr
    one_error_line(run, home, "medsam_vit_b.pth: cannot be written: no space left on device")
    assert "could not fetch" not in run.stderr and "offline" not in run.stderr
    assert run.left == []


def test_prepare_onto_a_full_disk(disk, shared_data, tmp_path):
    import json

    description = tmp_path / "description.json"
    description.write_text(json.dumps({"seed": 0, "datasets": [{
        "name": "jsrt", "modality": "xray", "images": str(shared_data / "jsrt_scr_cxr/images/*.png"),
        "labels": str(shared_data / "jsrt_scr_cxr/masks_labels/{stem}.png"),
        "classes": {"1": "right_lung", "2": "left_lung", "3": "heart"}}]}))
    out = disk / "prepared"
    run = run_on_small_disk(disk, ["prepare", description, "-o", out, "--no-progress"])
    assert run.returncode == 2, (run.stdout, run.stderr)
    one_error_line(run, out, "no space left on device")
    assert not [p for p in run.left if p.rsplit("/", 1)[-1].startswith(".")], run.left


def test_benchmark_onto_a_full_disk(disk, checkpoint):
    from pathlib import Path

    description = Path(__file__).resolve().parents[2] / "examples/datasets/interactive_3d.json"
    out = disk / "bench"
    run = run_on_small_disk(disk, ["benchmark", "interactive", "--description", description,
                                   "--datasets", "recist", "--max-cases", "1", "--clicks", "0",
                                   "--checkpoint", checkpoint, "-o", out])
    assert run.returncode == 2, run.stderr
    one_error_line(run, out, "no space left on device")
    assert run.left == []
