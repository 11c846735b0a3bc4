"""Generated broken files against the commands that read them: empty files, wrong magic,
truncations at several offsets, in every format. Each run ends with exit 0 (the file was
still readable) or exit 2 and one stderr line naming the file; never an internal error, a
traceback, a library's own lines, a left-over temporary file, or a changed input."""

import hashlib
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medsam.cli import main

FORMATS = ["nii", "nii.gz", "nrrd", "mha", "png", "jpg", "tif", "gif", "bmp", "npz"]


def valid_file(folder, ext):
    rng = np.random.default_rng(0)
    path = folder / f"mask.{ext}"
    if ext in ("nii", "nii.gz", "nrrd", "mha"):
        labels = (rng.random((6, 40, 40)) > 0.7).astype(np.uint8)
        sitk.WriteImage(sitk.GetImageFromArray(labels), str(path))
    elif ext == "npz":
        np.savez_compressed(path, segs=(rng.random((6, 40, 40)) > 0.7).astype(np.uint8),
                            spacing=np.array([1.0, 1.0, 2.0]))
    else:
        Image.fromarray(((rng.random((64, 80)) > 0.5) * 255).astype(np.uint8)).save(path)
    return path


def variants(data: bytes):
    yield "empty", b""
    yield "wrong magic", bytes(range(256)) * 4
    for fraction in (0.02, 0.3, 0.6, 0.95):
        yield f"cut at {fraction:.0%}", data[: max(1, int(len(data) * fraction))]


CASES = [(ext, name) for ext in FORMATS for name, _ in variants(b"x" * 100)]


def run(argv, capfd):
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


@pytest.mark.parametrize("ext,variant", CASES)
def test_volume_on_broken_files(tmp_path, capfd, ext, variant):
    source = valid_file(tmp_path, ext)
    data = dict(variants(source.read_bytes()))[variant]
    broken = tmp_path / f"broken.{ext}"
    broken.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a library warning would be a second stderr line
        code, out, err = run(["volume", broken], capfd)
    assert code in (0, 2), err
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("medsam: error: "), err
        assert str(broken) in err
        assert "0x" not in err and "Traceback" not in err
    assert hashlib.sha256(broken.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, broken.name])


@pytest.mark.parametrize("ext,variant", [c for c in CASES if c[0] in ("nii.gz", "nrrd", "png", "npz")])
def test_segment_on_broken_files(tmp_path, capfd, ext, variant):
    source = valid_file(tmp_path, ext)
    broken = tmp_path / f"broken.{ext}"
    broken.write_bytes(dict(variants(source.read_bytes()))[variant])
    box = ["--box", "2,2,30,30"] + (["--slice", "2"] if ext in ("nii.gz", "nrrd", "npz") else [])
    out_path = tmp_path / "out" / f"seg.{ 'png' if ext == 'png' else 'nii.gz'}"
    code, out, err = run(["segment", broken, *box, "--checkpoint", tmp_path / "never_loaded.pth",
                          "-o", out_path], capfd)
    assert code == 2, err                      # the image fails, or else the missing checkpoint
    assert err.count("\n") == 1 and err.startswith("medsam: error: "), err
    assert str(broken) in err or "never_loaded.pth" in err
    assert not (tmp_path / "out").exists()
