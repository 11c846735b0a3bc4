import os

import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError


def test_supported_extensions():
    read = io.supported_extensions()
    for ext in (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".bmp",
                ".tif", ".tiff", ".npz", ".dcm"):
        assert ext in read
    write = io.supported_extensions("write")
    assert ".nii.gz" in write and ".png" in write and ".jpg" not in write and ".dcm" not in write
    assert io.extension("a/B.NII.GZ") == ".nii.gz" and io.extension("x.png") == ".png"
    with pytest.raises(ValueError):
        io.supported_extensions("both")


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        io.read(tmp_path / "missing.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"notes.txt: unsupported file type '.txt'"):
        io.read(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="cannot write '.txt'"):
        io.write(np.zeros((2, 2), np.uint8), tmp_path / "out.txt")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable(tmp_path):
    p = tmp_path / "locked.png"
    io.write(np.zeros((2, 2), np.uint8), p)
    p.chmod(0)
    with pytest.raises(InputError, match="permission"):
        io.read(p)


def test_no_overwrite_without_permission(tmp_path, shared_data):
    labels, g = io.read(shared_data / "monai_testing/anatomical_label.nii.gz")
    out = io.write_labels(labels, tmp_path / "m.nii.gz", g)
    before = out.read_bytes()
    with pytest.raises(InputError, match="exists"):
        io.write_labels(np.zeros_like(labels), out, g)
    assert out.read_bytes() == before
    io.write_labels(np.zeros_like(labels), out, g, overwrite=True)
    assert io.read(out)[0].max() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]   # no temp files


def test_shape_mismatch_is_value_error(tmp_path):
    with pytest.raises(ValueError):
        io.write(np.zeros((3, 4, 5), np.uint8), tmp_path / "x.nii.gz", io.Geometry.default(2))


def test_as_label_map():
    assert io.as_label_map(np.array([True, False])).dtype == np.uint8
    assert io.as_label_map(np.array([0, 300])).dtype == np.uint16
    assert io.as_label_map(np.array([0.0, 2.0])).dtype == np.uint8
    for bad in (np.array([-1, 2]), np.array([0.5]), np.array([70000]), np.array(["a"])):
        with pytest.raises(ValueError):
            io.as_label_map(bad)
