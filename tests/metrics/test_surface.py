"""Surface metrics against DeepMind's surface-distance (the reference MedSAM uses)
on real masks and perturbed copies."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage

from medsam.metrics import (
    average_surface_distance,
    dice,
    hausdorff_distance,
    normalized_surface_distance,
    surface_distances,
)
from medsam.metrics import surface as surface_module

sd = pytest.importorskip("surface_distance")


def reference(pred, gt, spacing, tolerance=2.0):
    r = sd.compute_surface_distances(gt.astype(bool), pred.astype(bool), spacing)
    asd = sd.compute_average_surface_distance(r)
    n_gt, n_pred = r["surfel_areas_gt"].sum(), r["surfel_areas_pred"].sum()
    return {
        "nsd": sd.compute_surface_dice_at_tolerance(r, tolerance),
        "hd95": sd.compute_robust_hausdorff(r, 95),
        "assd": (asd[0] * n_gt + asd[1] * n_pred) / (n_gt + n_pred),
        "dsc": sd.compute_dice_coefficient(gt.astype(bool), pred.astype(bool)),
    }


def ours(pred, gt, spacing, tolerance=2.0):
    d = surface_distances(pred, gt, spacing)
    return {
        "nsd": normalized_surface_distance(d, tolerance=tolerance),
        "hd95": hausdorff_distance(d),
        "assd": average_surface_distance(d),
        "dsc": dice(pred, gt),
    }


def assert_agree(pred, gt, spacing, tolerance=2.0):
    a, b = ours(pred, gt, spacing, tolerance), reference(pred, gt, spacing, tolerance)
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a[key], b[key])
    return a


def perturbations(mask, ndim):
    struct = ndimage.generate_binary_structure(ndim, 1)
    yield "identical", mask
    yield "shifted", np.roll(mask, (1,) * (ndim - 1) + (3,), axis=tuple(range(ndim)))
    yield "eroded", ndimage.binary_erosion(mask, struct, iterations=2)
    yield "dilated", ndimage.binary_dilation(mask, struct, iterations=2)


def recist_cases(shared_data, limit=3):
    for path in sorted((shared_data / "medsam2_recist").glob("*.npz"))[:limit]:
        with np.load(path) as data:
            gt = data["gts"] > 0
            spacing = tuple(float(s) for s in data["spacing"][::-1])  # (x, y, z) -> (z, y, x)
        yield path.name, gt, spacing


def test_recist_lesions_and_perturbations(shared_data):
    checked = 0
    for name, gt, spacing in recist_cases(shared_data):
        assert spacing[0] > 3 * spacing[1]  # anisotropic CT
        for kind, pred in perturbations(gt, 3):
            if not pred.any():
                continue
            got = assert_agree(pred, gt, spacing)
            if kind == "identical":
                assert got == {"nsd": 1.0, "hd95": 0.0, "assd": 0.0, "dsc": 1.0}
            checked += 1
    assert checked >= 9


@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.0, 5.0])
def test_tolerances_on_recist(shared_data, tolerance):
    name, gt, spacing = next(recist_cases(shared_data, 1))
    pred = ndimage.binary_dilation(np.roll(gt, 2, axis=2), iterations=1)
    assert_agree(pred, gt, spacing, tolerance)


def test_totalseg_labels_with_anisotropic_spacing(shared_data):
    sitk = pytest.importorskip("SimpleITK")
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "totalseg" / "example_seg.nii.gz")))
    classes = json.loads((shared_data / "totalseg" / "class_map_total_and_total_mr.json").read_text())
    assert classes  # label names exist for this file
    labels = [lab for lab in np.unique(seg) if lab][:6]
    for lab in labels:
        gt = seg == lab
        for _, pred in perturbations(gt, 3):
            if pred.any():
                assert_agree(pred, gt, (3.0, 1.5, 0.8))
    # one organ against its neighbour: large distances
    assert_agree(seg == labels[0], seg == labels[1], (3.0, 3.0, 3.0))


def test_2d_masks(shared_data):
    from PIL import Image

    jsrt = sorted((shared_data / "jsrt_scr_cxr" / "masks").glob("*.png"))[:2]
    hc18 = sorted((shared_data / "hc18_fetal_us" / "masks_filled").glob("*.png"))[:2]
    assert jsrt and hc18
    for path in jsrt + hc18:
        gt = np.asarray(Image.open(path).convert("L")) > 127
        for _, pred in perturbations(gt, 2):
            assert_agree(pred, gt, (0.35, 0.2))


def test_many_far_elements_use_the_feature_transform_exactly(monkeypatch):
    # a big shell with a cavity far from the prediction's surface: more than
    # _FAR_FOR_TRANSFORM elements lie beyond the k-d tree's near bound
    z, y, x = np.ogrid[:40, :90, :90]
    gt = ((z - 20) * 2.0) ** 2 + (y - 45.0) ** 2 + (x - 45.0) ** 2 < 40**2
    pred = gt.copy()
    pred[12:28, 25:65, 25:65] = False
    spacing = (2.0, 1.0, 1.0)
    far_paths = []
    import scipy.ndimage

    original = scipy.ndimage.distance_transform_edt  # imported by the metric when it runs

    def spy(*args, **kwargs):
        far_paths.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(scipy.ndimage, "distance_transform_edt", spy)
    assert_agree(pred, gt, spacing)
    assert far_paths, "the feature-transform branch was not exercised"
    monkeypatch.setattr(surface_module, "_FAR_FOR_TRANSFORM", 10**9)
    far_paths.clear()
    assert_agree(pred, gt, spacing)
    assert not far_paths


def test_empty_cases():
    empty = np.zeros((5, 6, 7), bool)
    blob = empty.copy()
    blob[1:3, 2:4, 2:5] = True
    assert normalized_surface_distance(empty, empty, (1, 1, 1)) == 1.0
    assert hausdorff_distance(empty, empty, (1, 1, 1)) == 0.0
    assert average_surface_distance(empty, empty, (1, 1, 1)) == 0.0
    for a, b in ((blob, empty), (empty, blob)):
        assert normalized_surface_distance(a, b, (1, 1, 1)) == 0.0
        assert math.isinf(hausdorff_distance(a, b, (1, 1, 1)))
        assert math.isinf(average_surface_distance(a, b, (1, 1, 1)))
    d = surface_distances(blob, empty, (1, 1, 1))
    assert d.areas_gt.size == 0 and np.isinf(d.distances_pred_to_gt).all()


def test_known_2d_shift():
    # 2D square shifted by 3 pixels of 1 mm: the two vertical edges move by
    # 3 mm (beyond a 2 mm tolerance), the horizontal ones partly overlap.
    gt = np.zeros((40, 40), bool)
    gt[10:30, 10:30] = True
    pred = np.roll(gt, 3, axis=1)
    assert normalized_surface_distance(pred, gt, (1, 1), tolerance=3.0) == pytest.approx(1.0)
    assert normalized_surface_distance(pred, gt, (1, 1), tolerance=2.0) < 1.0
    assert hausdorff_distance(pred, gt, (1, 1)) == pytest.approx(3.0)
    # spacing scales distances: 3 px of 0.5 mm is within 2 mm
    assert normalized_surface_distance(pred, gt, (0.5, 0.5), tolerance=2.0) == pytest.approx(1.0)


def test_bad_arguments():
    a = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="shape"):
        surface_distances(a, np.zeros((4, 5), bool), (1, 1))
    with pytest.raises(ValueError, match="spacing"):
        surface_distances(a, a, (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        surface_distances(a, a, (1, -1))
    with pytest.raises(ValueError, match="2D or 3D"):
        surface_distances(np.zeros(4), np.zeros(4), (1,))
    with pytest.raises(ValueError, match="tolerance"):
        normalized_surface_distance(a, a, (1, 1), tolerance=-1)
