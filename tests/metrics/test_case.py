import math

import numpy as np
import pytest

from medsam.metrics import (
    MetricAccumulator,
    dice,
    evaluate_labels,
    hausdorff_distance,
    normalized_surface_distance,
    present_labels,
    summarize_values,
)


def test_multilabel_equals_per_label_binary(shared_data):
    sitk = pytest.importorskip("SimpleITK")
    gt = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "totalseg" / "example_seg.nii.gz")))
    pred = np.roll(gt, 2, axis=2)
    pred[pred == 5] = 0  # one label missing from the prediction
    spacing = (3.0, 1.5, 0.8)
    rows = evaluate_labels(pred, gt, spacing, case="ct", tolerance=2.0)
    assert [r.label for r in rows] == present_labels(gt, pred)
    for r in rows[:8]:
        p, g = pred == r.label, gt == r.label
        assert r.case == "ct"
        assert r.dsc == dice(p, g)
        assert r.nsd == normalized_surface_distance(p, g, spacing, tolerance=2.0)
        assert r.hd95 == hausdorff_distance(p, g, spacing)
        assert r.gt_voxels == g.sum() and r.pred_voxels == p.sum()
        assert r.gt_volume == pytest.approx(g.sum() * 3.0 * 1.5 * 0.8 / 1000)
        assert r.volume_unit == "mL"
    missing = next(r for r in rows if r.label == 5)
    assert missing.dsc == 0.0 and missing.nsd == 0.0 and math.isinf(missing.hd95) and missing.pred_volume == 0


def test_requested_absent_label_and_2d_units():
    gt = np.zeros((20, 20), np.uint8)
    gt[5:10, 5:10] = 1
    rows = evaluate_labels(gt, gt, (0.5, 0.5), labels=[1, 2])
    assert rows[0].dsc == 1.0 and rows[0].nsd == 1.0 and rows[0].hd95 == 0.0
    assert rows[0].gt_volume == pytest.approx(25 * 0.25) and rows[0].volume_unit == "mm2"
    assert rows[1].label == 2 and rows[1].dsc == 1.0 and rows[1].nsd == 1.0 and rows[1].gt_voxels == 0
    with pytest.raises(ValueError, match="positive"):
        evaluate_labels(gt, gt, (1, 1), labels=[0])


def test_summarize_and_accumulator():
    s = summarize_values([1, 2, 3, 4, math.inf])
    assert (s.median, s.q1, s.q3, s.mean, s.n, s.n_infinite) == (2.5, 1.75, 3.25, 2.5, 4, 1)
    acc = MetricAccumulator()
    a = np.zeros((10, 10), np.uint8)
    a[2:6, 2:6] = 1
    b = a.copy()
    b[2:6, 2:4] = 0
    acc.extend(evaluate_labels(a, a, (1, 1), case="same"))
    acc.extend(evaluate_labels(b, a, (1, 1), case="half"))
    assert len(acc) == 2
    summary = acc.summary()
    assert summary[1]["dsc"].median == pytest.approx((1.0 + 2 * 8 / 24) / 2)
    assert summary[1]["dsc"].n == 2
    acc.reset()
    assert len(acc) == 0


def test_a_tolerance_as_a_share_of_the_diagonal_is_the_same_at_any_resolution(shared_data):
    """A JSRT heart mask grown by 0.6 % of the image's side, at 2048 px and downsampled to
    256 px: a fixed 2 px tolerance fails the first (12 px off) and passes the second
    (1.5 px off); 1 % of the diagonal passes both. Images with a pixel size keep mm."""
    from PIL import Image
    from scipy import ndimage

    from medsam.evaluation.summary import tolerance_description
    from medsam.metrics.case import nsd_tolerance

    gt = np.asarray(Image.open(shared_data / "jsrt_scr_cxr" / "masks_labels" / "JPCLN001.png")) == 3
    nsd = {}
    for size in (2048, 256):
        g = np.asarray(Image.fromarray(gt).resize((size, size), Image.NEAREST))
        p = (ndimage.distance_transform_edt(~g) <= 0.006 * size).astype(np.uint8)
        g = g.astype(np.uint8)
        fixed = evaluate_labels(p, g, (1.0, 1.0), spacing_known=False)[0]
        share = evaluate_labels(p, g, (1.0, 1.0), spacing_known=False, diagonal_pct=1.0)[0]
        assert (fixed.nsd_tolerance, fixed.nsd_diagonal_pct) == (2.0, 0.0)
        assert share.nsd_tolerance == pytest.approx(0.01 * size * math.sqrt(2))
        assert share.nsd_diagonal_pct == 1.0
        assert share.nsd == normalized_surface_distance(p, g, (1.0, 1.0), tolerance=share.nsd_tolerance)
        nsd[size] = (fixed.nsd, share.nsd)
        assert tolerance_description([fixed]) == "2 px"
        assert tolerance_description([share, share]) == "1 % of the image diagonal"
        assert tolerance_description([fixed, share]) == "2 px or 1 % of the image diagonal"
    assert nsd == {2048: (0.0, 1.0), 256: (1.0, 1.0)}
    assert nsd_tolerance((100, 100), 2.0, True, 0.5) == 2.0   # a pixel size: mm as given
    with pytest.raises(ValueError, match="diagonal_pct"):
        evaluate_labels(gt.astype(np.uint8), gt.astype(np.uint8), (1.0, 1.0), diagonal_pct=0)
