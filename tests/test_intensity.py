import numpy as np
import pytest
import SimpleITK as sitk

from medsam.intensity import (
    CT_WINDOWS,
    CTWindow,
    canonical_modality,
    normalize_intensity,
    normalize_volume,
    resolve_window,
)


@pytest.fixture(scope="module")
def ct_volume(shared_data):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "totalseg" / "example_ct_sm.nii.gz")))


@pytest.fixture(scope="module")
def mr_volume(shared_data):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "totalseg" / "example_mr_sm.nii.gz")))


def medsam_ct_script(image, level, width):
    """pre_CT_MR.py, CT branch: clip to the window, min-max to [0, 255], np.uint8."""
    low, high = level - width / 2, level + width / 2
    pre = np.clip(image, low, high)
    pre = (pre - np.min(pre)) / (np.max(pre) - np.min(pre)) * 255.0
    return np.uint8(pre)


def medsam_mr_script(image):
    """pre_CT_MR.py, non-CT branch."""
    low, high = np.percentile(image[image > 0], 0.5), np.percentile(image[image > 0], 99.5)
    pre = np.clip(image, low, high)
    pre = (pre - np.min(pre)) / (np.max(pre) - np.min(pre)) * 255.0
    pre[image == 0] = 0
    return np.uint8(pre)


def test_ct_window_on_real_volume_equals_medsam_script(ct_volume):
    assert ct_volume.min() < -160 and ct_volume.max() > 240  # reaches both abdomen limits
    out = normalize_volume(ct_volume, "ct", window="abdomen")
    assert out.dtype == np.uint8 and out.shape == ct_volume.shape
    np.testing.assert_array_equal(out, medsam_ct_script(ct_volume.astype(np.float64), 40, 400))


def test_ct_slice_level_width_and_presets(ct_volume):
    slice_ = ct_volume[ct_volume.shape[0] // 2]
    out = normalize_intensity(slice_, "CT", level=-600, width=1500)
    assert out.shape == (*slice_.shape, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    expected = ((np.clip(slice_, -1350, 150) + 1350) / 1500 * 255).astype(np.uint8)
    np.testing.assert_array_equal(out[..., 0], expected)
    assert np.array_equal(normalize_intensity(slice_, "ct", window="lung"), out)
    assert not np.array_equal(normalize_intensity(slice_, "ct", window="brain"), out)
    # default window is abdomen
    assert np.array_equal(normalize_intensity(slice_, "ct"),
                          normalize_intensity(slice_, "ct", level=40, width=400))


def test_window_values():
    assert CT_WINDOWS["abdomen"] == CTWindow(40, 400)
    assert CT_WINDOWS["lung"].bounds == (-1350, 150)
    assert CT_WINDOWS["brain"] == CTWindow(40, 80)
    assert {"bone", "mediastinum"} <= set(CT_WINDOWS)
    assert resolve_window(level=10, width=20) == CTWindow(10, 20)
    with pytest.raises(ValueError, match="both"):
        resolve_window(level=10)
    with pytest.raises(ValueError, match="positive"):
        resolve_window(level=10, width=0)
    with pytest.raises(ValueError, match="unknown CT window 'liverish'"):
        resolve_window("liverish")


def test_mr_volume_percentiles_equal_medsam_script(mr_volume):
    out = normalize_volume(mr_volume, "mri")
    np.testing.assert_array_equal(out, medsam_mr_script(mr_volume.astype(np.float64)))
    assert out.max() == 255 and np.all(out[mr_volume == 0] == 0)


def test_ultrasound_image_percentiles(shared_data):
    from PIL import Image

    image = np.asarray(Image.open(sorted((shared_data / "busi_breast_us" / "images").glob("*.png"))[0]))
    grey = image if image.ndim == 2 else image[..., 0]
    out = normalize_intensity(grey, "us")
    np.testing.assert_array_equal(out[..., 1], medsam_mr_script(grey.astype(np.float64)))


def test_rgb_unchanged_inside_range_and_rescaled_outside(shared_data):
    from PIL import Image

    path = sorted((shared_data / "kvasir_seg_subset" / "images").iterdir())[0]
    image = np.asarray(Image.open(path))
    np.testing.assert_array_equal(normalize_intensity(image, "endoscopy"), image)
    wide = image.astype(np.float64) * 4 - 100
    out = normalize_intensity(wide, "rgb")
    assert out.min() == 0 and out.max() == 255
    expected = ((wide - wide.min()) / (wide.max() - wide.min()) * 255).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_modalities_and_errors():
    assert canonical_modality("Ultrasound") == "us"
    assert canonical_modality("x-ray") == "xray"
    for name in ("ct", "mr", "xray", "us", "mammo", "oct", "endoscopy", "dermoscopy", "fundus",
                 "pathology", "rgb"):
        assert canonical_modality(name) == name
    with pytest.raises(ValueError, match="unknown modality 'sonar'"):
        normalize_intensity(np.zeros((4, 4)), "sonar")
    with pytest.raises(ValueError, match="CT window was given"):
        normalize_intensity(np.zeros((4, 4)), "mr", window="lung")
    with pytest.raises(ValueError, match="empty"):
        normalize_intensity(np.zeros((0, 4)), "ct")
    with pytest.raises(ValueError, match="NaN"):
        normalize_intensity(np.full((4, 4), np.nan), "mr")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        normalize_intensity(np.zeros((2, 4, 4, 4)), "ct")
    with pytest.raises(ValueError, match=r"\(z, y, x\)"):
        normalize_volume(np.zeros((4, 4)), "ct")


def test_constant_image_does_not_divide_by_zero():
    out = normalize_intensity(np.full((5, 6), 7.0), "mr")
    assert out.shape == (5, 6, 3) and np.all(out == 0)
