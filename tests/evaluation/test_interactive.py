"""The interactive challenge protocol (medsam.evaluation.interactive)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from medsam.evaluation import interactive as ia
from medsam.evaluation import interactive_drivers, interactive_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segmentation"))
from threshold_segmenter import ThresholdSegmenter  # noqa: E402


def _ball(shape=(12, 64, 64), centre=(6, 30, 34), radius=5):
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= radius ** 2


def test_challenge_box_range_middle_slice_and_perturbation():
    mask = _ball()
    mask[9:11, 28:32, 32:36] = True          # more voxels above: the median slice moves up
    z = np.nonzero(mask)[0]
    for seed in range(5):
        b = ia.challenge_box(mask, np.random.RandomState(seed))
        assert (b.z_min, b.z_max, b.z_mid) == (1, 11, int(np.sort(z)[len(z) // 2]))
        ys, xs = np.nonzero(mask[b.z_mid])
        shift = xs.min() - b.x_min
        assert 0 <= shift <= 5 * 64 // 256 and b.x_max - xs.max() == shift and ys.min() - b.y_min == shift
    first = ia.challenge_box(mask, np.random.RandomState(2025))
    assert first == ia.challenge_box(mask, np.random.RandomState(2025))   # fixed seed, fixed box


def test_next_click_goes_to_the_middle_of_the_largest_error():
    gt = _ball(radius=5)
    small = np.zeros_like(gt)
    small[6, 30, 34] = True
    (z, y, x), fg = ia.next_click(small, gt)
    assert fg and gt[z, y, x] and not small[z, y, x]
    assert max(abs(z - 6), abs(y - 30), abs(x - 34)) <= 2         # near the centre of the missed ball
    spill = gt | _ball(centre=(6, 30, 50), radius=4)
    (z, y, x), fg = ia.next_click(spill, gt)
    assert not fg and (z, y, x) == (6, 30, 50)                   # background, in the spill's middle
    assert ia.next_click(gt, gt) is None


def test_auc_is_the_trapezoid_over_the_click_steps():
    assert ia.auc([0.5, 0.7, 0.7, 0.9, 1.0]) == pytest.approx((0.6 + 0.7 + 0.8 + 0.95))
    assert ia.auc([0.8]) == 0.0


def test_run_case_scores_every_step_and_clicks_repair_a_spill(tmp_path):
    gt = np.zeros((14, 48, 48), np.uint8)
    gt[3:10, 18:31, 18:31] = 1
    image = np.where(gt > 0, 200, 0).astype(np.uint8)
    image[10:13, 18:31, 18:31] = 200           # the walk spills into this neighbour
    driver = interactive_drivers.SessionDriver(ThresholdSegmenter(100, 255, min_fill=0.05))
    rows = ia.run_case(driver, image, gt, (2.0, 1.0, 1.0), [(1, "cube"), (2, "absent")], "synthetic", "c1")
    assert {r.name for r in rows} == {"cube"} and [r.step for r in rows] == list(range(6))
    objects = ia.object_summary(rows)
    dsc = objects[0]["dsc"]
    assert min(dsc) > 0.98 and dsc[-1] >= dsc[0] - 1e-3          # clicks on the corners do no harm
    result = interactive_results.write_results(rows, tmp_path / "out")
    assert (tmp_path / "out" / "steps.csv").read_text().count("\n") == 7
    assert "n = 1 objects" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "dsc_by_click.png").stat().st_size > 5000
    assert result["medians"] == pytest.approx(dsc + [dsc[-1]] * (6 - len(dsc)))


def test_clicks_that_come_back_in_order():
    clicks = {"fg": [[1, 2, 3], [4, 5, 6]], "bg": [[7, 8, 9]]}
    assert interactive_drivers.ordered_clicks(clicks, ["fg", "bg", "fg"]) == [
        ((1, 2, 3), True), ((7, 8, 9), False), ((4, 5, 6), True)]
    with pytest.raises(ValueError, match="names 2 bg"):
        interactive_drivers.ordered_clicks(clicks, ["bg", "bg"])
