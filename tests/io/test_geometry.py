import numpy as np
import pytest
import SimpleITK as sitk

from medsam.io.geometry import Geometry


@pytest.mark.parametrize("rel", [
    "monai_testing/reoriented_anat_moved.nii",      # flipped x and y axes
    "pyradiomics_nrrd/brain1_image.nrrd",           # flipped y, anisotropic
    "totalseg/example_seg_dicom.nii.gz",
])
def test_index_world_matches_itk(shared_data, rel):
    image = sitk.ReadImage(str(shared_data / rel))
    g = Geometry.from_sitk(image)
    assert g.spacing == tuple(reversed(image.GetSpacing()))
    rng = np.random.default_rng(0)
    size_zyx = np.array(image.GetSize()[::-1])
    idx = rng.uniform(-1, size_zyx, size=(20, 3))
    world = g.index_to_world(idx)
    for i, w in zip(idx, world):
        expected = image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in i[::-1]))
        np.testing.assert_allclose(w, expected, atol=1e-6)
    np.testing.assert_allclose(g.world_to_index(world), idx, atol=1e-9)


def test_permuted_direction_from_npz(same_place, shared_data):
    # RECIST npz geometry swaps x/y and flips z: a non-diagonal direction matrix.
    data = np.load(shared_data / "medsam2_recist/CT_Lesion_000001_02_01_008-023.npz")
    g = Geometry(spacing=data["spacing"][::-1], origin=data["origin"], direction=data["direction"])
    img = sitk.GetImageFromArray(np.zeros((2, 3, 4), np.uint8))
    g.apply_to(img)
    p = img.TransformContinuousIndexToPhysicalPoint((3.0, 2.0, 1.0))
    np.testing.assert_allclose(g.index_to_world([1, 2, 3]), p, atol=1e-9)
    assert same_place(Geometry.from_sitk(img), g)


def test_2d_and_sitk_roundtrip():
    g = Geometry(spacing=(0.5, 0.25), origin=(10, -3))
    img = g.to_sitk(np.zeros((4, 6), np.uint8))
    assert img.GetSize() == (6, 4) and img.GetSpacing() == (0.25, 0.5)
    np.testing.assert_allclose(g.index_to_world([2, 4]), [10 + 4 * 0.25, -3 + 2 * 0.5])
    rgb = g.to_sitk(np.zeros((4, 6, 3), np.uint8))
    assert rgb.GetNumberOfComponentsPerPixel() == 3 and rgb.GetDimension() == 2
    assert Geometry.default(2).spacing_known is False


@pytest.mark.parametrize("kwargs", [
    dict(spacing=(1, 1, -1)),
    dict(spacing=(1, 1, 0)),
    dict(spacing=(1,)),
    dict(spacing=(1, 1), origin=(0, 0, 0)),
    dict(spacing=(1, 1), direction=(1, 0, 0)),
    dict(spacing=(1, 1), direction=(1, 1, 0, 1)),       # not orthonormal
    dict(spacing=(1, float("nan"))),
    dict(spacing=("a", 1)),
])
def test_invalid_geometry(kwargs):
    with pytest.raises(ValueError):
        Geometry(**kwargs)


def test_shape_checks():
    g = Geometry.default(3)
    g.check_shape((2, 3, 4))
    with pytest.raises(ValueError):
        g.check_shape((3, 4))
    Geometry.default(2).check_shape((5, 6, 3))
    with pytest.raises(ValueError):
        Geometry.default(2).check_shape((5, 6, 7))
    with pytest.raises(ValueError):
        g.index_to_world([1, 2])
