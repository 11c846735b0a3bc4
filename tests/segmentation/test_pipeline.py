import numpy as np
import pytest
from scipy import ndimage

from medsam import io
from medsam.errors import InputError
from medsam.io import Geometry
from medsam.metrics import label_volumes
from medsam.segmentation import BoxPrompt, SliceCache, mask_to_box, segment

from threshold_segmenter import ThresholdSegmenter

RECIST = "medsam2_recist/CT_Lesion_000001_02_01_008-023.npz"


class CachingThreshold(ThresholdSegmenter):
    """Threshold segmenter with an expensive per-slice step (a smoothing 'encoder') cached by
    slice key, as MedSAM caches image embeddings."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cache = SliceCache(max_items=64)
        self.encoded = 0

    def set_slice(self, image, key=None):
        def encode():
            self.encoded += 1
            return ndimage.median_filter(image, size=3)
        super().set_slice(self.cache.get_or_compute(key, encode), key)


def _lesion_prompt(case):
    gt = case.gts > 0
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    key = (zs[0] + zs[-1]) // 2
    x0, y0, x1, y1 = mask_to_box(gt[key])
    return gt, key, (x0, y0, zs[0], x1, y1, zs[-1])


def test_segment_volume_two_objects_share_slices(shared_data):
    case = io.read_npz(shared_data / RECIST)
    gt, key, box3d = _lesion_prompt(case)
    values = case.image[key][gt[key]].astype(float)
    seg = CachingThreshold(values.mean() - 2 * values.std(), values.mean() + 2 * values.std())
    # the same lesion twice: once as a 3D box, once as the same box in world coordinates
    g = case.geometry
    x0, y0, z0, x1, y1, z1 = box3d
    world = [*g.index_to_world([z0, y0, x0]), *g.index_to_world([z1, y1, x1])]
    prompts = [BoxPrompt(box3d, label=1, name="lesion"), BoxPrompt(tuple(world), label=2, world=True)]
    labels = segment(case.image, g, prompts, seg)
    assert labels.shape == case.image.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 2}                  # label 2 painted over label 1
    found = labels > 0
    dice = 2 * (found & gt).sum() / (found.sum() + gt.sum())
    assert dice > 0.8
    zs = np.flatnonzero(found.any(axis=(1, 2)))
    assert z0 <= zs[0] and zs[-1] <= z1                      # bounded by the 3D box
    # the second object re-used every slice embedding of the first
    assert seg.encoded == len(set(seg.keys)) == seg.cache.misses
    assert seg.cache.hits >= seg.encoded


def test_segment_plain_mode_and_key_slice_prompt(shared_data):
    case = io.read_npz(shared_data / RECIST)
    gt, key, box3d = _lesion_prompt(case)
    values = case.image[key][gt[key]].astype(float)
    lo, hi = values.mean() - 2 * values.std(), values.mean() + 2 * values.std()
    plain = segment(case.image, case.geometry, [BoxPrompt(box3d)], ThresholdSegmenter(lo, hi), mode="plain")
    zs = np.flatnonzero(plain.any(axis=(1, 2)))
    assert zs[0] >= box3d[2] and zs[-1] <= box3d[5]
    x0, y0, _, x1, y1, _ = box3d
    prop = segment(case.image, case.geometry, [BoxPrompt((x0, y0, x1, y1), slice=key, label=300)],
                   ThresholdSegmenter(lo, hi))
    assert prop.dtype == np.uint16 and set(np.unique(prop)) == {0, 300}


def test_segment_2d_batch(shared_data):
    img, g = io.read(shared_data / "jsrt_scr_cxr/images/JPCLN001.png")
    ref, _ = io.read(shared_data / "jsrt_scr_cxr/masks_labels/JPCLN001.png")
    prompts = [BoxPrompt(tuple(mask_to_box(ref == k)), label=k) for k in (1, 2)]   # two lungs
    seg = ThresholdSegmenter(0, np.percentile(img[ref > 0], 75), min_fill=0.1)
    labels = segment(img, g, prompts, seg)
    assert seg.keys == [seg.keys[0]] and len(seg.boxes) == 2      # one image, both boxes at once
    for k in (1, 2):
        precision = (ref[labels == k] == k).mean()
        assert precision > 0.8 and (labels == k).sum() > 0.7 * (ref == k).sum()


def test_segment_rejects_bad_prompts(shared_data):
    case = io.read_npz(shared_data / RECIST)
    seg = ThresholdSegmenter(0, 255)
    with pytest.raises(InputError, match="outside"):
        segment(case.image, case.geometry, [BoxPrompt((0, 0, 0, 600, 10, 3))], seg)
    with pytest.raises(InputError, match="out of range"):
        segment(case.image, case.geometry, [BoxPrompt((0, 0, 10, 10), slice=16)], seg)
    with pytest.raises(ValueError):
        segment(case.image, case.geometry, [], seg)
    assert seg.keys == []                                        # checked before any work


def test_label_volumes_of_a_label_map(shared_data):
    labels, g = io.read(shared_data / "totalseg/example_seg.nii.gz")
    measures = label_volumes(labels, g.spacing)
    by_id = {m.label: m for m in measures}
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert sorted(by_id) == ids.tolist()
    liver = by_id[5]
    assert liver.voxels == counts[ids.tolist().index(5)]
    assert liver.volume_ml == pytest.approx(liver.voxels * np.prod(g.spacing) / 1000)
    assert "mL" in liver.describe("liver") and "(liver)" in liver.describe("liver")
    flat = label_volumes(np.array([[0, 1], [1, 2]]), (0.5, 2.0))
    assert [(m.label, m.voxels, m.area_mm2) for m in flat] == [(1, 2, 2.0), (2, 1, 1.0)]
    assert flat[0].volume_ml is None
    assert "unknown" in label_volumes(np.ones((2, 2), int), (1, 1), spacing_known=False)[0].describe()
    with pytest.raises(ValueError):
        label_volumes(labels, (1, 1))


def test_clicks_work_with_a_segmenter_that_takes_boxes_only():
    # the default walk moves the box to hold foreground clicks and edits the mask; no point prompts
    image = np.zeros((20, 30), np.uint8)
    image[3:18, 3:28] = 1
    prompt = BoxPrompt((2, 2, 28, 18), label=4, points=((5, 5),), point_labels=(0,))
    labels = segment(image, Geometry((1.0, 1.0)), [prompt], ThresholdSegmenter(1, 2, min_fill=0.05))
    assert labels[5, 5] == 0 and labels[12, 20] == 4
