import numpy as np
import pytest

from medsam.errors import InputError
from medsam.io import Geometry
from medsam.prompt_geometry import (
    index_box,
    mask_to_box,
    reference_box_to_world,
    validate_box_2d,
    validate_slice,
    validate_z_range,
    world_box_to_pixels,
)


def test_validate_box_2d():
    np.testing.assert_array_equal(validate_box_2d([0, 0, 10, 5], (5, 10)), [0, 0, 10, 5])
    for box, msg in [([0, 0, 0, 5], "zero"), ([3, 0, 2, 5], "zero"), ([0, 0, 11, 5], "outside"),
                     ([-1, 0, 4, 4], "outside"), ([0, 0, 4], "4 finite"), ([0, 0, np.nan, 3], "4 finite")]:
        with pytest.raises(InputError, match=msg):
            validate_box_2d(box, (5, 10))


def test_validate_z_and_slice():
    assert validate_z_range(2, 4, 5) == (2, 4)
    assert validate_z_range(3, 3, 5) == (3, 3)
    with pytest.raises(InputError, match="outside the volume"):
        validate_z_range(2, 5, 5)
    with pytest.raises(InputError, match="after"):
        validate_z_range(4, 2, 5)
    assert validate_slice(0, 3) == 0
    with pytest.raises(InputError, match=r"slice 3 is out of range: the volume has slices 0..2"):
        validate_slice(3, 3)
    with pytest.raises(InputError, match="whole"):
        validate_slice(1.5, 3)


def test_mask_to_box():
    m = np.zeros((10, 12), bool)
    assert mask_to_box(m) is None
    m[2:5, 3:9] = True
    np.testing.assert_array_equal(mask_to_box(m), [3, 2, 8, 4])
    np.testing.assert_array_equal(mask_to_box(m, 5), [0, 0, 11, 9])   # clipped
    one = np.zeros((10, 12), bool)
    one[4, 6] = True
    b = mask_to_box(one)
    assert b[2] > b[0] and b[3] > b[1]


def test_world_box_roundtrip_on_real_geometry(shared_data):
    from medsam import io

    vol, g = io.read(shared_data / "totalseg/example_seg_dicom.nii.gz")   # y axis flipped
    pix = np.array([100.0, 150.0, 4, 300.0, 260.0, 12])
    (z0, y0, x0), (z1, y1, x1) = pix[[2, 1, 0]], pix[[5, 4, 3]]
    corner_a = g.index_to_world([z0, y0, x0])
    corner_b = g.index_to_world([z1, y1, x1])
    world = [*corner_a, *corner_b]
    np.testing.assert_allclose(world_box_to_pixels(world, g, vol.shape), pix, atol=1e-6)
    # RAS (3D Slicer's display): x and y negated
    ras = [-corner_a[0], -corner_a[1], corner_a[2], -corner_b[0], -corner_b[1], corner_b[2]]
    np.testing.assert_allclose(world_box_to_pixels(ras, g, vol.shape, frame="RAS"), pix, atol=1e-6)
    # the same numbers read as LPS land elsewhere (here: outside the image)
    with pytest.raises(InputError, match="does not overlap"):
        world_box_to_pixels(ras, g, vol.shape)
    with pytest.raises(InputError, match="6 numbers"):
        world_box_to_pixels(world[:4], g, vol.shape)


def test_world_box_2d_uses_pixel_size():
    g = Geometry(spacing=(0.5, 0.25))
    np.testing.assert_allclose(world_box_to_pixels([1, 1, 2.5, 4], g, (20, 20)), [4, 2, 10, 8])
    # a box partly outside is clipped to the image
    np.testing.assert_allclose(world_box_to_pixels([-1, -1, 2.5, 4], g, (20, 20)), [0, 0, 10, 8])


def test_a_box_from_a_reference_whose_rows_run_the_other_way():
    """The DICOM series and the NIfTI of ../shared/data's CT: same voxels, rows reversed."""
    series = Geometry(spacing=(2.0, 0.9765625, 0.9765625), origin=(-249.51171875, -437.51171875, -804.5))
    nifti = Geometry(spacing=(2.0, 0.9765625, 0.9765625), origin=(-249.51171875, 61.51171875, -804.5),
                     direction=(1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    box = [300, 150, 8, 400, 260, 10]                      # x0, y0, z0, x1, y1, z1 in the NIfTI
    world = reference_box_to_world(box, nifti)
    on_series = world_box_to_pixels(world, series, (20, 512, 512))
    np.testing.assert_allclose(on_series, [300, 511 - 260, 8, 400, 511 - 150, 10], atol=1e-6)
    with pytest.raises(InputError, match="--box 1,2,3,4: a box on a 3D reference image needs 6 numbers"):
        reference_box_to_world([1, 2, 3, 4], nifti, what="--box 1,2,3,4")


ZERO_WIDTH = (10, 10, 10, 20)


def test_a_zero_width_box_is_refused_alike_by_prompts_the_session_and_the_predictor(lite_medsam_model):
    """One rule for a box's size everywhere: x0 < x1 and y0 < y1 (the predictor had accepted
    x0 == x1, which prompts files and the command line refused)."""
    from medsam.predictor import MedSAMPredictor
    from medsam.segmentation import BoxPrompt, resolve_prompt
    from medsam.segmentation.session import InteractiveSession

    image = np.zeros((40, 60), np.uint8)
    image[10:30, 20:40] = 200
    rule = "zero or negative size"
    with pytest.raises(InputError, match=rule):
        validate_box_2d(ZERO_WIDTH, image.shape)
    with pytest.raises(InputError, match=rule):
        resolve_prompt(BoxPrompt(ZERO_WIDTH), image.shape, Geometry.default(2))
    predictor = MedSAMPredictor(lite_medsam_model)
    predictor.set_image(image)
    with pytest.raises(InputError, match=rule):
        predictor.predict(boxes=[ZERO_WIDTH])
    session = InteractiveSession(predictor_segmenter(lite_medsam_model))
    session.load(image, Geometry.default(2))
    with pytest.raises(InputError, match=rule):
        session.add_box(1, ZERO_WIDTH)


def test_a_click_outside_the_image_is_refused_alike_by_prompts_the_session_and_the_predictor(lite_medsam_model):
    """One rule for where a click may lie: 0 <= x <= W, 0 <= y <= H, on a slice of the
    volume within the object's slice range (the session and prompts files each had their own
    check, with their own messages)."""
    from medsam.predictor import MedSAMPredictor
    from medsam.segmentation import BoxPrompt, resolve_prompt
    from medsam.segmentation.session import InteractiveSession

    volume = np.zeros((6, 40, 60), np.uint8)
    volume[:, 10:30, 20:40] = 200
    geometry = Geometry.default(3)
    session = InteractiveSession(predictor_segmenter(lite_medsam_model))
    session.load(volume, geometry)
    session.add_box(1, (18, 8, 42, 32), key_slice=2, z_range=(1, 4))
    for (x, y, z), rule in [((61, 5, 2), "outside the image"), ((5, -1, 2), "outside the image"),
                            ((5, 5, 6), "slice 6 is outside the volume"),
                            ((5, 5, 5), "outside the object's slice range 1..4")]:
        with pytest.raises(InputError, match=rule):
            session.add_click(1, x, y, z)
        with pytest.raises(InputError, match=rule):
            resolve_prompt(BoxPrompt((18, 8, 42, 32), slice=2, z_range=(1, 4), points=((x, y, z),),
                                     point_labels=(1,)), volume.shape, geometry)
    predictor = MedSAMPredictor(lite_medsam_model)
    predictor.set_image(volume[2])
    with pytest.raises(InputError, match="outside the image"):
        predictor.predict(points=[[61, 5]], point_labels=[1])


def predictor_segmenter(model):
    from medsam.segmentation import MedSAMSegmenter

    return MedSAMSegmenter(model)


def test_a_box_from_inclusive_pixel_indices_keeps_a_one_pixel_object():
    """Boxes from pixel indices (a mask's extent, a challenge npz's box) follow the same
    rule: a one-pixel-wide extent becomes a box one pixel wide, which every check takes,
    rather than a zero-width box that the checks refuse."""
    from medsam.io.npz import ChallengeBox
    from medsam.segmentation import resolve_prompt
    from medsam.segmentation.prompt_files import challenge_prompt

    assert index_box(4, 2, 4, 9) == (4.0, 2.0, 5.0, 9.0)
    assert index_box(3, 2, 8, 9) == (3.0, 2.0, 8.0, 9.0)          # any other box as it is
    assert index_box(11, 2, 11, 9, (20, 12)) == (11.0, 2.0, 12.0, 9.0)
    line = np.zeros((20, 12), bool)
    line[2:10, 11] = True
    np.testing.assert_array_equal(mask_to_box(line), [11, 2, 12, 9])
    prompt = challenge_prompt(ChallengeBox(1, 3, 2, 4, 2, 4, 9), label=1)
    resolved = resolve_prompt(prompt, (5, 20, 12), Geometry.default(3))
    assert resolved.box2d == (4.0, 2.0, 5.0, 9.0) and resolved.z_range == (1, 3) and resolved.key_slice == 2
