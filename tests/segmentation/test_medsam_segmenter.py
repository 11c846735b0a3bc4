"""MedSAM adapter with a real (random-weight) LiteMedSAM model: cached embeddings, equality
with the predictor, intensity preparation."""

import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError
from medsam.intensity import prepare_intensities
from medsam.segmentation import BoxPrompt, MedSAMSegmenter, segment, segment_image

MR = "monai_testing/anatomical.nii"


@pytest.fixture(scope="module")
def model():
    import torch

    from medsam import build_model

    torch.manual_seed(0)
    return build_model("lite").eval()


def _count_encoder_calls(model):
    calls = []
    handle = model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


@pytest.mark.slow
def test_embeddings_are_computed_once_per_slice(shared_data, model):
    vol, g = io.read(shared_data / MR)
    prepared = prepare_intensities(vol, g, "mr")
    prompts = [BoxPrompt((5, 8, 12, 28, 34, 13), label=1), BoxPrompt((8, 10, 12, 20, 30, 13), label=2)]
    calls, handle = _count_encoder_calls(model)
    try:
        cached = MedSAMSegmenter(model)
        labels = segment(prepared, g, prompts, cached, mode="plain")
        assert len(calls) == 2 == cached.encoder_calls          # slices 12 and 13, once each
        calls.clear()
        uncached = MedSAMSegmenter(model, cache_slices=0)
        again = segment(prepared, g, prompts, uncached, mode="plain")
        assert len(calls) == 4                                   # every object re-encodes
    finally:
        handle.remove()
    np.testing.assert_array_equal(labels, again)
    assert labels.shape == vol.shape and set(np.unique(labels)) <= {0, 1, 2}


@pytest.mark.slow
def test_segmenter_matches_predictor(shared_data, model):
    from medsam import MedSAMPredictor

    img, g = io.read(shared_data / "jsrt_scr_cxr/images/JPCLN001.png")
    boxes = np.array([[100, 200, 450, 800], [560, 200, 900, 800]], float)
    seg = MedSAMSegmenter(model)
    seg.set_slice(img, key="cxr")
    masks = seg.segment(boxes)
    predictor = MedSAMPredictor(model)
    predictor.set_image(img)
    expected, _, _ = predictor.predict(boxes=boxes)
    np.testing.assert_array_equal(masks, expected)
    labels = segment_image(img, g, [BoxPrompt(tuple(b), label=i + 1) for i, b in enumerate(boxes)], model)
    np.testing.assert_array_equal(labels == 1, expected[0] & ~expected[1])
    with pytest.raises(ValueError, match="set_slice"):
        MedSAMSegmenter(model).segment(boxes)


def test_prepare_intensities(shared_data):
    ct, g = io.read(shared_data / "totalseg/example_ct_dicom")
    out = prepare_intensities(ct, g, "ct", level=40, width=400)
    assert out.dtype == np.uint8 and out.shape == ct.shape
    # a window alone means CT
    np.testing.assert_array_equal(prepare_intensities(ct, g, None, level=40, width=400), out)
    assert out[ct <= -160].max() == 0 and out[ct >= 240].min() == 255
    with pytest.raises(InputError, match="modality"):
        prepare_intensities(ct, g)
    with pytest.raises(InputError):
        prepare_intensities(ct, g, "not-a-modality")
    rgb, g2 = io.read(shared_data / "kvasir_seg_subset/images/cju0qoxqj9q6s0835b43399p4.jpg")
    assert prepare_intensities(rgb, g2) is rgb                   # uint8 photos: unchanged


def test_repeated_calls_reuse_embeddings_by_content(shared_data, model):
    """Slices are keyed by their contents: a second call on the same volume with the
    same segmenter encodes nothing; a changed slice is encoded again; the cache is bounded.
    (Four embeddings in all: each takes about a second and a half on a 2-core CPU.)"""
    vol, g = io.read(shared_data / MR)
    prepared = prepare_intensities(vol, g, "mr")
    prompts = [BoxPrompt((5, 8, 12, 28, 34, 13), label=1)]
    seg = MedSAMSegmenter(model, cache_slices=2)
    first = segment(prepared, g, prompts, seg, mode="plain")
    assert seg.encoder_calls == 2
    np.testing.assert_array_equal(segment(prepared.copy(), g, prompts, seg, mode="plain"), first)
    assert seg.encoder_calls == 2                               # same contents: reused
    changed = prepared.copy()
    changed[12] = 255 - changed[12]
    segment(changed, g, prompts, seg, mode="plain")
    assert seg.encoder_calls == 3                               # only the changed slice
    segment(prepared, g, [BoxPrompt((5, 8, 0, 28, 34, 0), label=1)], seg, mode="plain")
    assert seg.encoder_calls == 4 and len(seg.cache) == 2       # a fourth slice: bounded


@pytest.mark.slow
def test_clicks_with_the_real_weights(shared_data, lite_medsam_model):
    """With the real weights: by default a background click removes the disc around it that
    reaches the mask's border (the box is not given the point); with ``model_clicks`` the
    clicks go to the model as SAM's point prompts, as the predictor takes them."""
    from medsam import MedSAMPredictor
    from medsam.segmentation.runner import SliceClicks, SliceRunner, enforce_clicks

    img, g = io.read(shared_data / "jsrt_scr_cxr/images/JPCLN001.png")
    box, points, point_labels = (426, 418, 793, 769), ((600, 600), (440, 430)), (1, 0)
    predictor = MedSAMPredictor(lite_medsam_model)
    predictor.set_image(img)
    box_only = predictor.predict(boxes=np.array(box, float))[0][0]
    seg = MedSAMSegmenter(lite_medsam_model)
    ys, xs = np.nonzero(box_only)
    cx, cy = int(np.median(xs)), int(np.median(ys))
    labels = segment(img, g, [BoxPrompt(box, label=1, points=((cx, cy),), point_labels=(0,))], seg)
    assert labels[cy, cx] == 0 and not ((labels > 0) & ~box_only).any()
    assert 0.2 * box_only.sum() < (labels > 0).sum() < box_only.sum()
    expected = predictor.predict(boxes=np.array(box, float), points=np.array([points], float),
                                 point_labels=np.array([point_labels]))[0][0]
    assert (expected != box_only).sum() > 0                         # the clicks change the mask
    clicks = SliceClicks(points, point_labels)
    got = SliceRunner(img[None], seg, model_clicks=True)(0, box, clicks)
    np.testing.assert_array_equal(got, enforce_clicks(expected, clicks))


def _grown_box(mask, margin=5.0):
    from medsam.segmentation import mask_to_box

    return np.asarray(mask_to_box(mask, margin), float)

