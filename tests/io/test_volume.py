import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from medsam import io
from medsam.errors import InputError
from medsam.io.volume import list_dicom_series, read_dicom_series

DICOM = "totalseg/example_ct_dicom"


@pytest.mark.parametrize("image_rel,label_rel,ext", [
    ("totalseg/example_ct_sm.nii.gz", "totalseg/example_seg.nii.gz", ".nii.gz"),
    ("monai_testing/reoriented_anat_moved.nii", "monai_testing/reoriented_anat_moved_label.nii.gz", ".nii"),
    ("pyradiomics_nrrd/brain1_image.nrrd", "pyradiomics_nrrd/brain1_label.nrrd", ".nrrd"),
    ("pyradiomics_nrrd/prostate_phantom_subvolume.nrrd",
     "pyradiomics_nrrd/prostate_phantom_subvolume-label.nrrd", ".mha"),
    ("monai_testing/anatomical.nii", "monai_testing/anatomical_label.nii.gz", ".mhd"),
    ("pyradiomics_nrrd/breast1_image.nrrd", "pyradiomics_nrrd/breast1_label.nrrd", ".nhdr"),
])
def test_volume_roundtrip(same_place, shared_data, tmp_path, image_rel, label_rel, ext):
    image, g = io.read(shared_data / image_rel)
    ref = sitk.ReadImage(str(shared_data / image_rel))
    assert image.shape == ref.GetSize()[::-1]
    assert g.spacing == pytest.approx(ref.GetSpacing()[::-1])
    assert g.origin == pytest.approx(ref.GetOrigin())
    assert g.direction == pytest.approx(ref.GetDirection())
    labels, lg = io.read(shared_data / label_rel)
    assert same_place(g, lg), (g, lg)
    out = io.write_labels(labels, tmp_path / f"mask{ext}", g)
    back, bg = io.read(out)
    assert back.shape == image.shape and back.dtype in (np.uint8, np.uint16)
    np.testing.assert_array_equal(back, labels)
    assert same_place(bg, g), (bg, g)
    # the image itself round-trips too (intensities and geometry)
    img_back, ig = io.read(io.write(image, tmp_path / f"image{ext}", g))
    np.testing.assert_array_equal(img_back, image)
    assert same_place(ig, g), (ig, g)
    # nothing else is left in the folder (detached headers name their final data file)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.startswith(".")], names
    assert len(names) == (4 if ext in (".mhd", ".nhdr") else 2), names


def test_dicom_series_sorted_by_position(shared_data):
    ct, g = io.read(shared_data / DICOM)
    assert ct.shape == (20, 512, 512) and ct.dtype == np.int16
    assert g.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    # every slice equals the file whose position along the normal has that rank
    files = sorted((shared_data / DICOM).iterdir())
    slices = []
    for f in files:
        im = sitk.ReadImage(str(f))
        slices.append((im.GetOrigin()[2], sitk.GetArrayFromImage(im)[0]))
    slices.sort(key=lambda s: s[0])
    z = np.array([s[0] for s in slices])
    assert np.all(np.diff(z) > 0)
    for k, (_, pixels) in enumerate(slices):
        np.testing.assert_array_equal(ct[k], pixels)
    assert g.origin[2] == pytest.approx(z[0])
    assert -1100 <= ct.min() < -900 and ct.max() > 1000  # Hounsfield units (rescale applied)


def test_dicom_mask_matches_seg_in_physical_space(same_place, shared_data, tmp_path):
    """A mask written from the DICOM series keeps the series' grid; TotalSegmentator's
    example_seg_dicom stores the same space with y flipped. Compared in world space, its
    bones fall on our bone voxels and all its organs inside our body mask; ignoring the
    direction cosines (comparing raw arrays) fails both checks."""
    ct, g = io.read(shared_data / DICOM)
    ours = np.zeros(ct.shape, np.uint8)
    ours[ct > -500] = 1          # body
    ours[ct > 150] = 2           # bone (and contrast)
    out = io.write_labels(ours, tmp_path / "ct_mask.nii.gz", g)
    mask, mg = io.read(out)
    assert mask.shape == ct.shape
    assert same_place(mg, g)

    seg, sg = io.read(shared_data / "totalseg/example_seg_dicom.nii.gz")
    assert sg.matrix[1, 1] == -1 and not same_place(sg, g)
    bone_ids = [*range(25, 51), *range(69, 75), *range(92, 118)]

    def scores(seg_on_ours):
        organs = seg_on_ours > 0
        bones = np.isin(seg_on_ours, bone_ids)
        return (mask[organs] > 0).mean(), (mask[bones] == 2).mean()

    inside, bone_hit = scores(io.resample(seg, sg, mg, mask.shape))
    assert inside > 0.95 and bone_hit > 0.5
    naive_inside, naive_bone = scores(seg)   # direction ignored
    assert naive_inside < 0.85 and naive_bone < 0.1
    # and the other way round: our mask resampled onto the flipped grid
    back = io.resample(mask, mg, sg, seg.shape)
    assert (back[np.isin(seg, bone_ids)] == 2).mean() == pytest.approx(bone_hit, abs=0.01)


def _write_series(folder, uid, description, n=3, z0=0.0):
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(n):
        sl = sitk.GetImageFromArray(np.full((1, 8, 8), k * 10, np.int16))
        sl.SetOrigin((0.0, 0.0, z0 + 2.0 * k))
        sl.SetSpacing((1.0, 1.0, 2.0))
        for tag, value in [("0020|000e", uid), ("0008|103e", description), ("0008|0060", "CT"),
                           ("0020|0032", f"0\\0\\{z0 + 2.0 * k}"), ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0008|0018", f"{uid}.{k + 1}"), ("0020|0013", str(n - k))]:
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{description}_{k}.dcm"))
        writer.Execute(sl)


def test_dicom_folder_with_two_series(tmp_path):
    _write_series(tmp_path, "1.2.826.0.1.3680043.2.1125.1", "first", n=3)
    _write_series(tmp_path, "1.2.826.0.1.3680043.2.1125.2", "second", n=4, z0=-20)
    series = list_dicom_series(tmp_path)
    assert len(series) == 2
    with pytest.raises(InputError) as err:
        io.read(tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "2 DICOM series" in msg
    assert "1.2.826.0.1.3680043.2.1125.1" in msg and "second" in msg
    vol, g = read_dicom_series(tmp_path, series_id="1.2.826.0.1.3680043.2.1125.2")
    assert vol.shape == (4, 8, 8)
    np.testing.assert_array_equal(vol[:, 0, 0], [0, 10, 20, 30])  # sorted by position
    assert g.origin[2] == pytest.approx(-20)
    with pytest.raises(InputError, match="no DICOM series '9.9'"):
        io.read(tmp_path, series_id="9.9")


def test_dicom_errors(tmp_path):
    with pytest.raises(InputError, match="no DICOM series found"):
        io.read(tmp_path)
    (tmp_path / "notes.txt").write_text("not dicom")
    with pytest.raises(InputError, match="no DICOM series found"):
        io.read(tmp_path)


def test_corrupt_volume(tmp_path, shared_data):
    bad = tmp_path / "broken.nii.gz"
    data = (shared_data / "totalseg/example_ct_sm.nii.gz").read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError) as err:
        io.read(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    raw = (shared_data / "monai_testing/anatomical.nii").read_bytes()
    (tmp_path / "short.nii").write_bytes(raw[:-100])
    with pytest.raises(InputError, match="short.nii: truncated NIfTI"):
        io.read(tmp_path / "short.nii")
    (tmp_path / "full.nii").write_bytes(raw)
    assert io.read(tmp_path / "full.nii")[0].shape == (25, 41, 33)
    junk = tmp_path / "junk.nrrd"
    junk.write_bytes(b"hello, not an image")
    with pytest.raises(InputError, match="junk.nrrd"):
        io.read(junk)


def test_single_dicom_file(shared_data, tmp_path):
    one = sorted((shared_data / DICOM).iterdir())[0]
    shutil.copy(one, tmp_path / "slice.dcm")
    arr, g = io.read(tmp_path / "slice.dcm")
    assert arr.shape[-2:] == (512, 512)
