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
