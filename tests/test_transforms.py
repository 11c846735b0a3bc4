import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from medsam.transforms import (
    TRANSFORMS,
    LiteMedSAMTransform,
    MedSAMTransform,
    SAMTransform,
    area_resize,
    get_transform,
    longest_side_shape,
    spline_resize,
)

# a few real 2D images of different modalities, sizes and aspect ratios
REAL_IMAGES = [
    "busi_breast_us/images/10018.png",
    "kvasir_seg_subset/images/cju0sxqiclckk08551ycbwhno.jpg",
    "hc18_fetal_us/images/000_HC.png",
    "jsrt_scr_cxr/images/JPCLN001.png",
    "isic_ham10000_skin/images",
]


def load_rgb(path) -> np.ndarray:
    if path.is_dir():
        path = sorted(path.iterdir())[0]
    image = np.asarray(Image.open(path))
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=-1)
    return image[:, :, :3]


@pytest.fixture(scope="module")
def real_images(shared_data):
    images = []
    for rel in REAL_IMAGES:
        path = shared_data / rel
        if not path.exists():  # hc18 names may differ: take the first image of the folder
            path = sorted((shared_data / rel).parent.glob("*.png"))[0]
        images.append(load_rgb(path))
    return images


def test_spline_resize_equals_skimage_on_real_images(real_images):
    skimage_transform = pytest.importorskip(
        "skimage.transform", reason="scikit-image is a test dependency (pip install -e '.[test]')")
    for image in real_images[:2]:
        expected = skimage_transform.resize(image, (1024, 1024), order=3, preserve_range=True,
                                            anti_aliasing=True).astype(np.uint8)
        np.testing.assert_array_equal(spline_resize(image, (1024, 1024)).astype(np.uint8),
                                      expected)


@pytest.mark.parametrize("shape, size", [((90, 140, 3), (256, 256)), ((512, 512, 1), (1024, 1024)),
                                         ((1500, 2100, 3), (1024, 1024)), ((300, 517, 3), (33, 65)),
                                         ((1, 5, 3), (1024, 1024)), ((7, 2, 3), (256, 256))])
@pytest.mark.parametrize("grey", [False, True])
def test_spline_resize_equals_skimage_enlarging_and_shrinking(shape, size, grey):
    """Separable and once per distinct channel, yet skimage's numbers (to rounding)."""
    skimage_transform = pytest.importorskip(
        "skimage.transform", reason="scikit-image is a test dependency (pip install -e '.[test]')")
    image = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    if grey:
        image = np.repeat(image[..., :1], 3, axis=2)
    expected = skimage_transform.resize(image, size, order=3, preserve_range=True,
                                        anti_aliasing=True)
    np.testing.assert_allclose(spline_resize(image, size), expected, rtol=0, atol=1e-9)


def test_area_resize_equals_opencv_on_real_images(real_images):
    cv2 = pytest.importorskip(
        "cv2", reason="opencv-python-headless is a test dependency (pip install -e '.[test]')")
    for image in real_images:
        h, w = longest_side_shape(*image.shape[:2], 256)
        expected = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(area_resize(image, (h, w)), expected)


@pytest.mark.parametrize("shape", [(1024, 1024), (512, 384), (1000, 700), (3000, 2000),
                                   (257, 300), (100, 150), (200, 57), (17, 17), (120, 256)])
def test_area_resize_equals_opencv_shrinking_and_enlarging(shape):
    cv2 = pytest.importorskip(
        "cv2", reason="opencv-python-headless is a test dependency (pip install -e '.[test]')")
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3)).astype(np.uint8)
    h, w = longest_side_shape(*shape, 256)
    expected = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(area_resize(image, (h, w)), expected)


def test_longest_side_shape():
    assert longest_side_shape(575, 757, 256) == (194, 256)
    assert longest_side_shape(757, 575, 1024) == (1024, 778)
    assert longest_side_shape(100, 100, 256) == (256, 256)


def test_medsam_prepare_image_matches_published_steps(real_images):
    image = real_images[0]
    prepared = MedSAMTransform().prepare_image(image)
    assert prepared.tensor.shape == (3, 1024, 1024) and prepared.tensor.dtype == np.float32
    assert prepared.original_size == image.shape[:2] and prepared.input_size == (1024, 1024)
    resized = spline_resize(image, (1024, 1024)).astype(np.uint8).astype(np.float64)
    expected = (resized - resized.min()) / (resized.max() - resized.min())
    np.testing.assert_array_equal(prepared.tensor, expected.transpose(2, 0, 1).astype(np.float32))
    assert prepared.tensor.min() == 0.0 and prepared.tensor.max() == 1.0


def test_medsam_boxes_and_points_scaled_per_axis():
    t = MedSAMTransform()
    boxes = t.apply_boxes(np.array([[10, 20, 30, 40]]), (500, 250))
    np.testing.assert_allclose(boxes, [[10 * 1024 / 250, 20 * 1024 / 500, 30 * 1024 / 250,
                                        40 * 1024 / 500]])
    np.testing.assert_allclose(t.apply_points(np.array([[[125, 250]]]), (500, 250)),
                               [[[512, 512]]])


def test_medsam_postprocess_upsamples_probabilities():
    logits = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    masks = MedSAMTransform().postprocess(logits, (300, 400), (1024, 1024))
    expected = F.interpolate(torch.sigmoid(logits), (300, 400), mode="bilinear",
                             align_corners=False) > 0.5
    assert masks.shape == (2, 1, 300, 400) and masks.dtype == torch.bool
    assert torch.equal(masks, expected)


def test_lite_prepare_pads_and_normalises(real_images):
    image = real_images[0]  # 575 x 757 -> 194 x 256
    prepared = LiteMedSAMTransform().prepare_image(image)
    assert prepared.tensor.shape == (3, 256, 256)
    assert prepared.input_size == (194, 256)
    assert np.all(prepared.tensor[:, 194:, :] == 0)
    inside = prepared.tensor[:, :194, :]
    assert inside.min() == 0.0 and inside.max() == 1.0


def test_lite_boxes_truncated_like_litemedsam():
    t = LiteMedSAMTransform()
    # ratio 256 / 757; int() truncation as in CVPR24_LiteMedSAM_infer.resize_box_to_256
    box = np.array([100, 200, 300, 400])
    expected = [int(v * 256 / 757) for v in box]
    np.testing.assert_array_equal(t.apply_boxes(box[None], (575, 757)), [expected])


def test_lite_postprocess_crops_then_resizes():
    logits = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(1))
    masks = LiteMedSAMTransform().postprocess(logits, (575, 757), (194, 256))
    expected = torch.sigmoid(F.interpolate(logits[..., :194, :256], (575, 757),
                                           mode="bilinear", align_corners=False)) > 0.5
    assert torch.equal(masks, expected)


def test_sam_prepare_matches_pil_and_mean_std(real_images):
    image = real_images[1]
    t = SAMTransform()
    prepared = t.prepare_image(image)
    h, w = longest_side_shape(*image.shape[:2], 1024)
    assert prepared.input_size == (h, w)
    resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC)).astype(np.float32)
    mean = np.array([123.675, 116.28, 103.53], dtype=np.float32)
    std = np.array([58.395, 57.12, 57.375], dtype=np.float32)
    np.testing.assert_array_equal(prepared.tensor[:, :h, :w],
                                  ((resized - mean) / std).transpose(2, 0, 1))
    assert np.all(prepared.tensor[:, h:, :] == 0) and np.all(prepared.tensor[:, :, w:] == 0)


def test_sam_boxes_and_postprocess():
    t = SAMTransform()
    np.testing.assert_allclose(t.apply_boxes(np.array([[0, 0, 757, 575]]), (575, 757)),
                               [[0, 0, 1024, 778 / 575 * 575]], rtol=1e-12)
    logits = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    masks = t.postprocess(logits, (575, 757), (778, 1024))
    up = F.interpolate(logits, (1024, 1024), mode="bilinear", align_corners=False)
    expected = F.interpolate(up[..., :778, :1024], (575, 757), mode="bilinear",
                             align_corners=False) > 0
    assert torch.equal(masks, expected)


def test_registry():
    assert set(TRANSFORMS) == {"medsam", "litemedsam", "sam"}
    assert isinstance(get_transform("sam"), SAMTransform)
    with pytest.raises(ValueError, match="unknown transform 'x'"):
        get_transform("x")
