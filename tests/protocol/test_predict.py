"""The protocol's scoring on real data, with a method that needs no model: the box
itself as the mask (a real, if crude, baseline), so these tests take seconds."""

import numpy as np
import pytest

from medsam.protocol.predict import evaluate_methods, rater_scores, reference_labels, score
from medsam.segmentation import CallableSegmenter


def box_as_mask(image, box):
    """The pixels inside ``box`` (x0, y0, x1, y1 inclusive)."""
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = np.round(box).astype(int)
    mask[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    return mask


def empty(image, box):
    return np.zeros(image.shape[:2], bool)


def spec_of(description, name):
    return next(s for s in description.datasets if s.name == name)


def test_every_method_gets_the_same_boxes_and_a_row_per_case_and_label(description):
    spec = spec_of(description, "jsrt")
    cases = {"JPCLN001", "JPCLN002"}
    methods = {"box": CallableSegmenter(box_as_mask), "again": CallableSegmenter(box_as_mask),
               "empty": CallableSegmenter(empty)}
    results = evaluate_methods(spec, methods, cases, ("tight", "perturbed"), seed=0)
    assert set(results) == {"tight", "perturbed"}
    tight = results["tight"]
    assert {(r.method, r.case, r.label) for r in tight} == {
        (m, c, label) for m in methods for c in cases for label in (1, 2, 3)}
    assert {r.task for r in tight} == {"jsrt"}
    by = {(r.method, r.key): r for r in tight}
    for r in tight:
        if r.method == "box":  # the same boxes, so the same masks and scores
            assert by[("again", r.key)].dsc == r.dsc
            assert 0.5 < r.dsc < 0.95 and r.pred_voxels > r.gt_voxels   # a box holds its organ
        if r.method == "empty":
            assert r.dsc == 0.0 and r.pred_voxels == 0
    perturbed = {(r.method, r.key): r.dsc for r in results["perturbed"]}
    assert any(perturbed[("box", r.key)] != r.dsc for r in tight if r.method == "box")


def test_instances_are_scored_one_by_one(description):
    spec = spec_of(description, "jsrt")
    results = evaluate_methods(spec, {"box": CallableSegmenter(box_as_mask)}, {"JPCLN001"}, ("tight",))
    rows = results["tight"]
    from medsam.evaluation.accuracy import case_predictions

    (case, geometry, _, refs, (predicted,)), = list(case_predictions(
        spec, [CallableSegmenter(box_as_mask)], ("tight",), cases={"JPCLN001"}))
    as_instances = score(predicted, refs, geometry, "jsrt", "box", case, instances=True)
    assert [(r.case, r.label) for r in as_instances] == [(f"{case}#{r.label}", 1) for r in rows]
    assert {r.image for r in as_instances} == {case} and [r.image for r in rows] == [case] * len(rows)
    assert [r.dsc for r in as_instances] == [r.dsc for r in rows]
    labels = reference_labels(predicted, refs)
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and labels.dtype == refs.reference.dtype


def test_the_raters_comparison_scores_each_rater_and_the_model(description):
    spec = spec_of(description, "drive")
    scores = rater_scores(spec, CallableSegmenter(box_as_mask), "box", max_cases=2)
    assert {s.case for s in scores} == {"01", "02"}
    assert {s.participant for s in scores} == {"1st", "2nd", "box"}
    model = [s for s in scores if s.participant == "box"]
    raters = [s for s in scores if s.participant != "box"]
    # vessels are thin: a box around them all is a poor mask; the raters agree far better
    assert max(s.dsc for s in model) < 0.5 < min(s.dsc for s in raters)


def test_an_unknown_setting_is_refused(description):
    with pytest.raises(ValueError, match="unknown box settings"):
        evaluate_methods(spec_of(description, "jsrt"), {"box": CallableSegmenter(box_as_mask)},
                         {"JPCLN001"}, ("loose",))
