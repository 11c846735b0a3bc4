import numpy as np
import pytest
from PIL import Image

from medsam.evaluation.experts import compare_with_experts, expert_markdown, expert_table, majority_vote
from medsam.metrics import dice


def test_majority_vote():
    a = np.array([1, 1, 0, 0])
    b = np.array([1, 0, 1, 0])
    c = np.array([1, 1, 1, 0])
    np.testing.assert_array_equal(majority_vote([a, b, c]), [True, True, True, False])
    np.testing.assert_array_equal(majority_vote([a, b]), [True, False, False, False])
    np.testing.assert_array_equal(majority_vote([a, b], tie="foreground"), [True, True, True, False])
    np.testing.assert_array_equal(majority_vote([a]), a.astype(bool))
    with pytest.raises(ValueError):
        majority_vote([])
    with pytest.raises(ValueError, match="shape"):
        majority_vote([a, np.zeros(3)])


def generated_raters(n_raters=5, n_cases=4, seed=0):
    """Raters who each move every edge of a true disk by a random 0-2 px;
    one careless rater moves it by up to 6 px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    truth, raters = [], {f"r{i}": [] for i in range(n_raters)}
    for _ in range(n_cases):
        cy, cx, rad = rng.uniform(24, 40), rng.uniform(24, 40), rng.uniform(10, 16)
        truth.append((yy - cy) ** 2 + (xx - cx) ** 2 < rad**2)
        for i in range(n_raters):
            spread = 6 if i == n_raters - 1 else 2
            r = rad + rng.uniform(-spread, spread)
            raters[f"r{i}"].append((yy - cy - rng.uniform(-1, 1)) ** 2 + (xx - cx) ** 2 < r**2)
    return truth, raters


def test_leave_one_out_on_generated_raters():
    truth, raters = generated_raters()
    cases = [f"c{i}" for i in range(len(truth))]
    scores = compare_with_experts(raters, cases, model=truth, tolerance=1.0)
    # each rater is scored against the vote of the others, never against itself
    for s in scores:
        if s.participant != "model":
            assert s.reference == f"consensus without {s.participant}"
    s0 = next(s for s in scores if s.participant == "r0" and s.case == "c0")
    others = majority_vote([raters[n][0] for n in raters if n != "r0"])
    assert s0.dsc == dice(raters["r0"][0], others)
    table = expert_table(scores)
    assert [row["rater"] for row in table] == ["r0", "r1", "r2", "r3", "r4", "(all raters)"]
    careless = table[4]
    assert careless["rater_dsc"] < min(row["rater_dsc"] for row in table[:4])
    # the model (the truth) scored against the same consensus as the careless rater beats it
    assert careless["model_dsc"] > careless["rater_dsc"]


def test_drive_two_annotators(shared_data):
    root = shared_data / "drive_fundus" / "test"
    first = sorted((root / "1st_manual").glob("*.gif"))[:4]
    assert first
    cases, r1, r2 = [], [], []
    for path in first:
        number = path.name.split("_")[0]
        second = next((root / "2nd_manual").glob(f"{number}_*"))
        cases.append(number)
        r1.append(np.asarray(Image.open(path).convert("L")) > 127)
        r2.append(np.asarray(Image.open(second).convert("L")) > 127)
    # a 'model' that is annotator 1 with one-pixel thinner vessels removed at the border
    model = [np.roll(m, 1, axis=1) for m in r1]
    scores = compare_with_experts({"1st": r1, "2nd": r2}, cases, model=model)
    table = expert_table(scores)
    # with two raters, each rater's leave-one-out consensus is the other rater: symmetric DSC
    assert table[0]["rater_dsc"] == pytest.approx(table[1]["rater_dsc"])
    assert 0.6 < table[0]["rater_dsc"] < 0.9  # inter-observer agreement on thin vessels
    assert table[2]["rater"] == "(all raters)" and 0 < table[2]["model_dsc"] < 1
    own = np.percentile([s.dsc for s in scores if s.participant == "1st"], [25, 75])
    assert (table[0]["rater_dsc_q1"], table[0]["rater_dsc_q3"]) == pytest.approx(tuple(own))
    line = expert_markdown(table).splitlines()[2]
    assert f"{100 * table[0]['rater_dsc']:.1f} [{100 * own[0]:.1f}, {100 * own[1]:.1f}]" in line


def test_expert_figure_in_percent_with_the_all_rater_consensus_and_clear_labels():
    from medsam.evaluation.plots import expert_figure

    rng = np.random.default_rng(0)
    truth = [rng.random((32, 32)) > 0.5 for _ in range(5)]
    noisy = [[t ^ (rng.random(t.shape) > q) for t in truth] for q in (0.9, 0.85, 0.8)]
    scores = compare_with_experts({"a": noisy[0], "b": noisy[1], "c": noisy[2]}, [str(i) for i in range(5)],
                                  model=truth)
    fig = expert_figure(scores)
    fig.canvas.draw()
    left, right = fig.axes[:2]
    assert [t.get_text() for t in left.get_xticklabels()] == ["a", "b", "c", "all raters"]
    assert left.get_ylabel() == "DSC (%)" and right.get_ylabel() == "NSD (%)"
    assert right.get_ylim()[1] > 100 and left.get_ylim()[0] >= 0
    _labels_clear(fig)
    two = expert_figure(compare_with_experts({"a": noisy[0], "b": noisy[1]}, [str(i) for i in range(5)]))
    _labels_clear(two)     # the narrowest figure: two raters, no model


def _labels_clear(fig):
    fig.canvas.draw()
    left, right = fig.axes[:2]
    renderer = fig.canvas.get_renderer()
    label = right.yaxis.label.get_window_extent(renderer)
    ticks = [t.get_window_extent(renderer) for t in right.get_yticklabels() + left.get_yticklabels() if t.get_text()]
    assert not any(label.overlaps(t) for t in ticks)                 # the right label clears the tick labels
    assert not label.overlaps(left.get_window_extent(renderer))      # and the left plot


def test_masks_without_background_at_the_threshold_are_refused(shared_data):
    """DRIVE's second annotator's GIFs hold 3 (background) and 253 (vessels): at the default
    threshold 0 every pixel would be a vessel, so reading them asks for a threshold."""
    import re

    from medsam.errors import InputError
    from medsam.evaluation.experts import load_rater_masks

    root = shared_data / "drive_fundus" / "test"
    folders = {"first": root / "1st_manual", "second": root / "2nd_manual"}
    pattern = re.compile(r"^(\d+)_")
    with pytest.raises(InputError, match=r"2nd_manual.*no pixel is background \(values 3\.\.253"):
        load_rater_masks(folders, pattern)
    masks = load_rater_masks(folders, pattern, threshold=127)
    assert len(masks.cases) == 20 and 0.05 < masks.masks["second"][0].mean() < 0.2
