"""InteractiveSession and the click rules of medsam.segmentation.engine, on synthetic
volumes with a threshold segmenter (the real model is in tests/segmentation/test_interactive_real.py)."""

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.io import Geometry
from medsam.segmentation import BoxPrompt, mask_to_box, segment
from medsam.segmentation.session import InteractiveSession

from threshold_segmenter import ThresholdSegmenter


def _tube(depth=20, size=48, z0=4, z1=15):
    """A bright disc of radius 6 on slices z0..z1 (the object), nothing elsewhere."""
    vol = np.zeros((depth, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - 24) ** 2 + (xx - 24) ** 2 <= 36
    vol[z0:z1 + 1][:, disc] = 200
    return vol


def _session(vol, **kw):
    s = InteractiveSession(ThresholdSegmenter(100, 255, min_fill=0.05), **kw)
    s.load(vol, Geometry((2.0, 1.0, 1.0)))
    return s


def test_box_walk_starts_at_the_key_slice_and_keeps_to_the_slice_range():
    vol = _tube()
    s = _session(vol)
    box = mask_to_box(vol[9] > 0)
    mask = s.add_box(1, tuple(box), key_slice=9, z_range=(6, 12))
    assert s.segmenter.boxes[0].tolist() == list(box)          # the key slice first, with the user's box
    assert np.nonzero(mask.any(axis=(1, 2)))[0].tolist() == list(range(6, 13))
    unbounded = s.add_box(2, tuple(box), key_slice=9)           # no range: while the object is there
    assert np.nonzero(unbounded.any(axis=(1, 2)))[0].tolist() == list(range(4, 16))


def test_slice_range_must_hold_the_key_slice_and_clicks_must_lie_in_the_volume():
    s = _session(_tube())
    with pytest.raises(InputError, match="slice range 10..12 does not contain its key slice 9"):
        s.add_box(1, (18, 18, 30, 30), key_slice=9, z_range=(10, 12))
    s.add_box(1, (18, 18, 30, 30), key_slice=9)
    with pytest.raises(InputError, match=r"label 1 click \(5, 5, 20\): slice 20 is outside the volume"):
        s.add_click(1, 5, 5, 20)
    with pytest.raises(InputError, match="no object with label 3"):
        s.add_click(3, 5, 5, 5)


def test_background_click_beyond_the_object_removes_the_spill_there_and_beyond():
    vol = _tube()
    vol[16:19, 18:31, 18:31] = 200      # a neighbour continuing the tube: the walk spills into it
    s = _session(vol)
    s.add_box(1, (18, 18, 30, 30), key_slice=9)
    before = s.mask(1)
    assert before[16:19].any()
    after = s.add_click(1, 24, 24, 17, foreground=False)   # "not the object here"
    assert not after[17:].any()
    np.testing.assert_array_equal(after[:16], before[:16])  # the rest is left alone


def test_foreground_click_on_a_slice_outside_the_mask_extends_the_object():
    vol = _tube()
    s = _session(vol)
    s.add_box(1, (18, 18, 30, 30), key_slice=9, z_range=(0, 19))
    vol2 = vol.copy()
    vol2[16:19] = vol[10]                # the object goes on past a gap on slice 16..18 ...
    vol2[16] = 0
    vol2[16, 22:27, 22:27] = 200         # ... through a thin neck the walk stops at
    s2 = _session(vol2)
    mask = s2.add_box(1, (18, 18, 30, 30), key_slice=9)
    assert not mask[17:].any()
    mask = s2.add_click(1, 24, 24, 18, foreground=True)
    assert mask[18].sum() > 50 and mask[17].sum() > 50
    assert s2.objects()[0]["clicks"] == [[24.0, 24.0, 18, 1]]


def test_click_on_another_slice_changes_the_mask_there_and_is_carried_until_nothing_changes():
    vol = _tube()
    vol[12:15, 24:36, 28:40] = 200      # on slices 12-14 the object has a bright lobe attached
    s = _session(vol)
    s.add_box(1, (18, 18, 30, 30), key_slice=9)
    before = s.mask(1).copy()
    assert before[13, 32, 36]
    calls = len(s.segmenter.boxes)
    after = s.add_click(1, 36, 32, 13, foreground=False)  # the lobe is not the object
    assert not after[13, 32, 36] and after[13, 24, 24]
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after[:10], before[:10])  # far slices untouched
    assert len(s.segmenter.boxes) - calls < 12               # not the whole volume again


def test_undo_remove_rename_and_the_label_map():
    vol = _tube()
    s = _session(vol)
    a = s.add_box(1, (18, 18, 30, 30), key_slice=9)
    s.add_box(2, (18, 18, 30, 30), key_slice=5, z_range=(4, 6), name="top")
    labels = s.label_map()
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2}
    assert (labels == 2).any(axis=(1, 2)).nonzero()[0].tolist() == [4, 5, 6]   # later object wins
    s.add_click(1, 24, 24, 12, foreground=False)
    assert not np.array_equal(s.mask(1), a)
    s.undo()
    np.testing.assert_array_equal(s.mask(1), a)
    s.rename(2, "upper")
    assert [o["name"] for o in s.objects()] == ["", "upper"]
    s.remove(2)
    assert s.labels == [1]
    s.undo()
    s.undo()
    assert [o["name"] for o in s.objects()] == ["", "top"]
    while s.can_undo:
        s.undo()
    with pytest.raises(InputError, match="nothing to undo"):
        s.undo()


def test_exported_prompts_replay_to_the_same_label_map():
    vol = _tube()
    vol[12:15, 24:36, 28:40] = 200
    s = _session(vol)
    s.add_box(1, (18, 18, 30, 30), key_slice=9, z_range=(3, 16), name="tube")
    s.add_click(1, 36, 32, 13, foreground=False)
    s.add_click(1, 24, 24, 15, foreground=True)
    prompts = s.prompts()
    again = BoxPrompt.__new__(BoxPrompt)
    assert prompts[0].to_json()["z_range"] == [3, 16]
    again = [BoxPrompt(**{**p.__dict__}) for p in prompts]
    replayed = segment(vol, Geometry((2.0, 1.0, 1.0)), again, ThresholdSegmenter(100, 255, min_fill=0.05))
    np.testing.assert_array_equal(replayed, s.label_map())


def test_a_2d_image_is_a_volume_of_one_slice():
    img = _tube()[9]
    s = InteractiveSession(ThresholdSegmenter(100, 255, min_fill=0.05))
    s.load(img, Geometry((1.0, 1.0)))
    mask = s.add_box(1, (18, 18, 30, 30))
    assert mask.shape == img.shape and mask.sum() == (img > 0).sum()
    mask = s.add_click(1, 24, 24, foreground=False)
    assert not mask[24, 24]
    replayed = segment(img, Geometry((1.0, 1.0)), s.prompts(), ThresholdSegmenter(100, 255, min_fill=0.05))
    np.testing.assert_array_equal(replayed, s.label_map())


class _Recording:
    """A real MedSAM segmenter that records which prompts reach the model."""

    def __init__(self, model, store=None):
        from medsam.segmentation import MedSAMSegmenter

        class Recording(MedSAMSegmenter):
            def segment_scored(inner, box, points=None, point_labels=None, mask_input=None):
                self.calls.append((0 if points is None else len(points), mask_input is not None))
                return super().segment_scored(box, points, point_labels, mask_input)

            def segment(inner, boxes):
                self.calls += [(0, False)] * len(boxes)
                return super().segment(boxes)

        self.calls: list[tuple[int, bool]] = []
        self.segmenter = Recording(model, store=store)


@pytest.fixture(scope="module")
def kidney_ct(shared_data):
    from medsam import io
    from medsam.intensity import prepare_intensities

    image, geometry = io.read(shared_data / "totalseg" / "example_ct_sm.nii.gz")
    return prepare_intensities(image, geometry, "ct", "abdomen"), geometry


def test_clicks_and_neighbour_masks_go_to_the_model_only_when_it_was_trained_for_them(
        kidney_ct, lite_interactive_model, lite_medsam_model, embedding_store):
    image, geometry = kidney_ct
    seen = {}
    for name, model in (("trained", lite_interactive_model), ("plain", lite_medsam_model)):
        recorder = _Recording(model, embedding_store)
        session = InteractiveSession(recorder.segmenter)
        session.load(image, geometry)
        session.add_box(1, (70, 29, 92, 51), key_slice=9, z_range=(5, 14))
        walked = list(recorder.calls)
        recorder.calls.clear()
        session.add_click(1, 80, 40, 12, foreground=False)
        seen[name] = (walked, list(recorder.calls))
    walked, clicked = seen["trained"]
    # the key slice from its box alone, every other slice with its neighbour's mask
    assert walked[0] == (0, False) and len(walked) > 3 and all(c == (0, True) for c in walked[1:])
    # the clicked slice with its click and its own mask; carried slices with their neighbour's
    assert clicked[0] == (1, True) and all(c[1] for c in clicked)
    # LiteMedSAM: boxes alone everywhere (its clicks are mask edits)
    walked, clicked = seen["plain"]
    assert len(walked) > 3 and all(c == (0, False) for c in walked + clicked)


def test_set_prompt_segments_only_what_changed():
    """The one rule for a changed prompt (the web app's segment request and a replayed
    prompts file): the same box with more clicks applies the new clicks only; a new name
    alone segments nothing; another box segments the object again from it."""
    s = _session(_tube())
    segmented: list[int] = []
    s.on_slice = segmented.append
    first = BoxPrompt((16, 16, 32, 32), label=1, slice=10, z_range=(2, 18))
    mask = s.set_prompt(first)
    assert mask[4:16].all(axis=(1, 2)).sum() == 0 and mask[4:16].any(axis=(1, 2)).all()
    assert s.slices_to_segment(first) == 17
    calls = len(segmented)
    s.set_prompt(BoxPrompt((16, 16, 32, 32), label=1, slice=10, z_range=(2, 18), name="tube"))
    assert len(segmented) == calls and s.objects()[0]["name"] == "tube"
    clicked = BoxPrompt((16, 16, 32, 32), label=1, slice=10, z_range=(2, 18), name="tube",
                        points=((24, 24, 12),), point_labels=(0,))
    s.set_prompt(clicked)
    assert s.objects()[0]["clicks"] == [[24.0, 24.0, 12, 0]]
    assert len(segmented) > calls and segmented[calls] == 12   # the clicked slice first
    assert s.can_undo
    s.set_prompt(BoxPrompt((18, 18, 30, 30), label=1, slice=8, z_range=(2, 18)))   # another box
    assert s.objects()[0]["clicks"] == [] and s.objects()[0]["key_slice"] == 8
    s.close()
    with pytest.raises(InputError, match="no image loaded"):
        s.set_prompt(first)
