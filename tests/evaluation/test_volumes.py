import numpy as np
import pytest

from medsam.evaluation.volumes import volume_agreement, volume_pairs
from medsam.metrics import label_volumes


def test_label_volumes_real_lesion(shared_data):
    path = sorted((shared_data / "medsam2_recist").glob("*.npz"))[0]
    with np.load(path) as data:
        gts, spacing_xyz = data["gts"], data["spacing"]
    vols = label_volumes(gts, tuple(spacing_xyz[::-1]))
    assert [v.label for v in vols] == [1]
    expected = (gts == 1).sum() * np.prod(spacing_xyz) / 1000.0
    assert vols[0].volume == pytest.approx(expected) and vols[0].unit == "mL"


def test_label_volumes_2d_and_errors():
    m = np.zeros((4, 4), np.uint8)
    m[0, :2] = 2
    assert label_volumes(m, (0.5, 0.5))[0].volume == pytest.approx(0.5)
    with pytest.raises(ValueError):
        label_volumes(m, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="integer"):
        label_volumes(m.astype(float), (1.0, 1.0))


def test_volume_agreement_on_real_lesions(method_tables):
    pred, ref = volume_pairs(method_tables["dilated"])
    assert pred.size == 6  # 3D rows only (JSRT rows are 2D)
    a = volume_agreement(pred, ref)
    assert a.pearson.r == pytest.approx(np.corrcoef(pred, ref)[0, 1])
    assert a.pearson.ci_low < a.pearson.r <= a.pearson.ci_high
    assert a.bland_altman.mean_difference == pytest.approx(np.mean(pred - ref))
    assert a.bland_altman.mean_difference > 0  # dilation grows every lesion
