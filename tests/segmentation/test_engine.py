from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medsam.segmentation import mask_to_box, propagate_3d
from medsam.segmentation.engine import DEFAULT_WALK

from threshold_segmenter import ThresholdSegmenter

RECIST = sorted(["CT_Lesion_000001_02_01_008-023.npz", "CT_Lesion_000002_03_01_035-047.npz",
                 "CT_Lesion_000009_03_01_036-048.npz", "CT_Lesion_000010_01_01_078-090.npz",
                 "CT_Lesion_000015_01_01_081-093.npz", "CT_Lesion_000015_01_01_103-115.npz"])


def _cone(depth=21, size=64, top=3, bottom=17, peak=10):
    """A double cone of bright discs: radius grows to slice `peak` and shrinks after."""
    vol = np.zeros((depth, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for z in range(top, bottom + 1):
        r = 4 + 2 * (min(z - top, bottom - z))
        vol[z][(yy - 30) ** 2 + (xx - 34) ** 2 <= r * r] = 200
    return vol


def test_propagation_recovers_cone_and_uses_previous_mask_boxes():
    vol = _cone()
    truth = vol > 0
    seg = ThresholdSegmenter(100, 255, min_fill=0.05)
    box = mask_to_box(truth[10])
    # with a slice range (here the whole volume); without one the walk asks for a 50 % overlap
    # and ends the fast-shrinking tip a slice early (test_without_a_range_the_walk_asks_for_more)
    out = propagate_3d(vol, seg, box, key_slice=10, margin=3, cache_key="cone", z_range=(0, 20))
    np.testing.assert_array_equal(out, truth)
    # first call: the given box on the key slice; then boxes of the previous slice's mask + 3 px
    np.testing.assert_allclose(seg.boxes[0], box)
    np.testing.assert_allclose(seg.boxes[1], mask_to_box(truth[10], 3))   # slice 11 from slice 10
    assert seg.keys[:3] == [("cone", 10), ("cone", 11), ("cone", 12)]
    # walked up to slice 17, tried 18 (empty: stop), then down from 9 to 3, tried 2
    assert [k[1] for k in seg.keys] == [10, *range(11, 19), *range(9, 1, -1)]


def test_z_range_and_3d_box_bound_the_walk():
    vol = _cone()
    seg = ThresholdSegmenter(100, 255, min_fill=0.05)
    x0, y0, x1, y1 = mask_to_box(vol[10] > 0)
    out = propagate_3d(vol, seg, (x0, y0, 6, x1, y1, 12))        # key slice = middle = 9
    assert np.flatnonzero(out.any((1, 2))).tolist() == list(range(6, 13))
    assert seg.keys[0] is None and len(seg.keys) == 7             # no cache key given
    np.testing.assert_allclose(seg.boxes[0], [x0, y0, x1, y1])


def test_plain_mode_uses_the_same_box_on_every_slice():
    vol = _cone()
    seg = ThresholdSegmenter(100, 255, min_fill=0.0)
    box = mask_to_box(vol[10] > 0)
    out = propagate_3d(vol, seg, (*box[:2], 0, *box[2:], 20), mode="plain")
    assert len(seg.boxes) == 21 and all(np.allclose(b, box) for b in seg.boxes)
    np.testing.assert_array_equal(out, vol > 0)
    with pytest.raises(ValueError, match="plain mode needs a z-range"):
        propagate_3d(vol, seg, box, key_slice=10, mode="plain")


def test_empty_key_slice_and_callable_segmenter():
    vol = _cone()
    calls = []

    def nothing(image, box):
        calls.append(box)
        return np.zeros(image.shape, bool)

    out = propagate_3d(vol, nothing, (5, 5, 20, 20), key_slice=10)
    assert not out.any() and len(calls) == 1


@pytest.mark.parametrize("kwargs,message", [
    (dict(box=(1, 2, 3)), "4 or 6"),
    (dict(box=(1, 1, 9, 9)), "key_slice"),
    (dict(box=(1, 1, 9, 9), key_slice=30), "key slice"),
    (dict(box=(1, 1, 9, 9), key_slice=3, mode="both"), "mode"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        propagate_3d(_cone(), ThresholdSegmenter(1, 2), **kwargs)


def test_recist_lesions_z_extent(shared_data):
    """From a box on the lesion's middle slice, propagation driven by a threshold segmenter
    (intensity window from the key slice) finds where each lesion starts and ends."""
    errors, dices = [], []
    for name in RECIST:
        data = np.load(Path(shared_data) / "medsam2_recist" / name)
        img, gt = data["imgs"], data["gts"] > 0
        zs = np.flatnonzero(gt.any(axis=(1, 2)))
        key = (zs[0] + zs[-1]) // 2
        values = img[key][gt[key]].astype(float)
        seg = ThresholdSegmenter(values.mean() - 2 * values.std(), values.mean() + 2 * values.std())
        # the walk's own stop signals, without the stricter overlap for objects with no range
        out = propagate_3d(img, seg, mask_to_box(gt[key]), key_slice=key, margin=2,
                           config=replace(DEFAULT_WALK, min_overlap_open=DEFAULT_WALK.min_overlap))
        found = np.flatnonzero(out.any(axis=(1, 2)))
        errors.append(max(abs(found[0] - zs[0]), abs(found[-1] - zs[-1])))
        dices.append(2 * (out & gt).sum() / (out.sum() + gt.sum()))
        assert (out & ~gt).sum() < out.sum()   # mostly on the lesion
    assert max(errors) <= 1, errors            # z-extent within one slice, every lesion
    assert np.mean(dices) > 0.65, dices


def test_without_a_range_the_walk_asks_for_more():
    vol = _cone()
    seg = ThresholdSegmenter(100, 255, min_fill=0.05)
    out = propagate_3d(vol, seg, mask_to_box(vol[10] > 0), key_slice=10, margin=3)
    assert np.flatnonzero(out.any(axis=(1, 2))).tolist() == list(range(4, 17))   # the tips (3, 17) end it
