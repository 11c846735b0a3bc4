"""NaN and infinite voxels are refused by every reader, naming the file (ITK alone would
read NaN in NIfTI as 0 and the segmentation and volumes would be silently wrong)."""

import numpy as np
import pytest
import SimpleITK as sitk

from medsam.errors import InputError
from medsam.io import read


def write_float(path, array):
    if path.suffix == ".npz":
        np.savez(path, imgs=array)
    elif path.suffix == ".tif":
        from PIL import Image

        Image.fromarray(array[0]).save(path)
    else:
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.mha", "v.npz", "v.tif"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_voxels_are_refused(tmp_path, name, dtype, bad):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(3, 7, 9)).astype(dtype)
    array[0, 1, 2] = bad
    path = tmp_path / name
    write_float(path, array)
    with pytest.raises(InputError, match=f"{path}: 1 voxels are NaN or infinite"):
        read(path)
    array[0, 1, 2] = 0.5
    write_float(path, array)
    assert np.isfinite(read(path)[0]).all()


def test_nifti_with_extension_header_and_nan(tmp_path):
    """A NIfTI whose voxels start after header extensions (vox_offset > 352)."""
    array = np.zeros((2, 3, 4), np.float32)
    array[1, 2, 3] = np.nan
    image = sitk.GetImageFromArray(array)
    path = tmp_path / "ext.nii"
    sitk.WriteImage(image, str(path))
    raw = bytearray(path.read_bytes())
    offset = int(np.frombuffer(raw[108:112], "<f4")[0])
    extension = np.array([32, 6], "<i4").tobytes() + b"x" * 24   # one 32-byte extension
    raw[348:352] = b"\x01\x00\x00\x00"
    raw[108:112] = np.array([offset + 32], "<f4").tobytes()
    path.write_bytes(bytes(raw[:offset]) + extension + bytes(raw[offset:]))
    with pytest.raises(InputError, match="1 voxels are NaN"):
        read(path)


def test_segment_refuses_nan_volume_with_one_line(cli, tmp_path):
    array = np.zeros((4, 32, 32), np.float32)
    array[2, 10, 10] = np.nan
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    r = cli("segment", path, "--box", "1,1,20,20", "--slice", "1", "--modality", "ct",
            "-o", tmp_path / "seg.nii.gz")
    assert r.returncode == 2
    assert r.stderr == f"medsam: error: {path}: 1 voxels are NaN or infinite; replace or mask them before use\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]
