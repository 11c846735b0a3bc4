"""Boxes from reference masks, scoring, and the accuracy of the real LiteMedSAM weights on
the real data of ../shared/data (examples/datasets/shared_data.json)."""

import numpy as np
import pytest

from medsam.evaluation.accuracy import (
    BOX_SETTINGS,
    evaluate_dataset,
    median_table,
    reference_prompts,
    score_labels,
    table_markdown,
)
from medsam.io.geometry import Geometry


def two_blobs() -> np.ndarray:
    ref = np.zeros((100, 120), np.uint8)
    ref[10:30, 10:40] = 1      # object 1 of label 1
    ref[60:90, 70:110] = 1     # object 2 of label 1
    ref[50:53, 5:8] = 1        # a 9-pixel speck: dropped
    ref[40:50, 50:60] = 2      # label 2
    return ref


def test_reference_prompts_2d_one_box_per_object():
    refs = reference_prompts(two_blobs(), 2, min_pixels=20)
    assert [p.box for p in refs.prompts] == [(10, 10, 39, 29), (70, 60, 109, 89), (50, 40, 59, 49)]
    assert [p.label for p in refs.prompts] == [1, 2, 3]
    assert refs.groups == {1: (1, 2), 2: (3,)}
    assert refs.reference[51, 6] == 0 and refs.reference[15, 15] == 1  # the speck is not scored


def test_reference_prompts_perturbed_grow_within_limits_and_repeat_with_seed():
    ref = two_blobs()
    tight = reference_prompts(ref, 2, min_pixels=20)
    grown = [reference_prompts(ref, 2, min_pixels=20, shift=1024,
                               rng=np.random.default_rng(s)) for s in range(20)]
    for refs in grown:
        for t, g in zip(tight.prompts, refs.prompts):
            assert g.box[0] <= t.box[0] and g.box[1] <= t.box[1]
            assert g.box[2] >= t.box[2] and g.box[3] >= t.box[3]
            assert min(g.box) >= 0 and g.box[2] <= 120 and g.box[3] <= 100
            # shift 1024 at 1024 is scaled to max(H, W) = 120 px here
            assert max(t.box[0] - g.box[0], g.box[2] - t.box[2]) <= 120
    assert len({refs.prompts[0].box for refs in grown}) > 1
    again = reference_prompts(ref, 2, min_pixels=20, shift=1024, rng=np.random.default_rng(3))
    assert again.prompts == grown[3].prompts


def test_reference_prompts_3d_box_and_key_slice():
    ref = np.zeros((10, 40, 50), np.uint8)
    ref[2:7, 10:20, 5:25] = 1
    ref[4, 5:30, 3:40] = 1          # slice 4 is the largest
    refs = reference_prompts(ref, 3, min_pixels=5, min_voxels=10)
    assert refs.prompts[0].box == (3, 5, 2, 39, 29, 6) and refs.prompts[0].slice is None
    key = reference_prompts(ref, 3, prompt="key_slice", min_pixels=5, min_voxels=10)
    assert key.prompts[0].slice == 4 and key.prompts[0].box == (3, 5, 39, 29)
    with pytest.raises(ValueError, match="prompt must be"):
        reference_prompts(ref, 3, prompt="points")


def test_score_labels_unions_the_objects_of_a_label():
    ref = two_blobs()
    refs = reference_prompts(ref, 2, min_pixels=20)
    predicted = np.zeros_like(ref)
    predicted[10:30, 10:40] = 1          # object 1 found
    predicted[60:90, 70:110] = 2         # object 2 found
    predicted[40:50, 50:55] = 3          # half of label 2
    rows = {r[0]: r for r in score_labels(predicted, refs, Geometry((1.0, 1.0), spacing_known=False))}
    assert rows[1][1] == 1.0 and rows[1][2] == 1.0
    assert rows[2][1] == pytest.approx(2 * 50 / 150)
    assert rows[2][3:] == (100, 50)


def test_median_table_by_structure_counts_images_and_averages_their_objects():
    from medsam.evaluation.accuracy import AccuracyRow

    def row(dataset, case, label, name, dsc):
        return AccuracyRow(dataset, case, label, name, "tight", dsc, dsc / 2, 2.0, "px", 1, 10, 10)

    rows = [row("cxr", "a", 1, "lung", 0.98), row("cxr", "a", 3, "heart", 0.70),
            row("cxr", "b", 1, "lung", 0.96), row("cxr", "b", 3, "heart", 0.80)]
    rows += [row("nuclei", "img", i, "object", v) for i, v in enumerate((0.5, 0.9, 0.9, 0.9), start=1)]
    table = {(t["dataset"], t["structure"]): t for t in median_table(rows, by="structure")}
    assert list(table) == [("cxr", "lung"), ("cxr", "heart"), ("nuclei", "object")]
    assert table[("cxr", "heart")]["dsc_median"] == pytest.approx(0.75) and table[("cxr", "heart")]["cases"] == 2
    nuclei = table[("nuclei", "object")]
    assert (nuclei["cases"], nuclei["labels"]) == (1, 4) and nuclei["dsc_median"] == pytest.approx(0.8)
    pooled = {t["dataset"]: t for t in median_table(rows)}
    assert pooled["cxr"]["labels"] == 4 and pooled["nuclei"]["dsc_median"] == pytest.approx(0.9)
    assert "| nuclei | object | tight | 1 | 4 | 80.0" in table_markdown(median_table(rows, by="structure"))


# --- real weights on real data -------------------------------------------------------

# dataset -> (cases used here, floor for the median DSC with tight boxes, with perturbed
# boxes, floor for the median NSD with tight boxes); floors sit a little under what the
# official LiteMedSAM weights measured on these cases (see the README's table)
FLOORS = {                      # measured: DSC tight, perturbed; NSD tight (%)
    "kvasir": (10, 0.93, 0.93, 0.40),       # 95.4, 96.1; 44.1
    "jsrt": (6, 0.95, 0.95, 0.38),          # 97.5, 97.7; 43.2 (lungs and heart)
    "hc18": (6, 0.88, 0.88, 0.05),          # 90.3, 91.4; 7.0 (2 px on an 800 px image)
    "busi": (8, 0.91, 0.91, 0.48),          # 93.8, 93.7; 53.8
    "isic": (8, 0.90, 0.91, 0.15),          # 93.1, 94.5; 18.9
    "glas": (6, 0.93, 0.93, 0.50),          # 95.7, 96.0; 55.5
    "cdd_cesm": (8, 0.79, 0.78, 0.23),      # 82.3, 81.4; 27.6
    "stardist": (1, 0.79, 0.72, 0.62),      # 81.9, 74.7; 67.0 (125 nuclei)
    "drive": (4, 0.22, 0.22, 0.04),         # 24.4, 24.6; 5.5 (vessels: one box is no prompt)
    "totalseg_ct": (1, 0.88, 0.88, 0.71),   # 90.5, 90.8; 74.1 (6 organs, 3D boxes)
    "totalseg_mr": (1, 0.74, 0.74, 0.43),   # 77.0, 76.6; 45.7 (4 organs, 3D boxes)
    "brats_flair": (1, 0.52, 0.53, 0.38),   # 55.4, 56.9; 41.2 (edema, 3D box)
    "recist": (2, 0.76, 0.74, 0.77),        # 78.2, 76.4; 79.9 (key-slice box, first 2 cases)
}


@pytest.fixture(scope="module")
def segmenter(lite_medsam_model, embedding_store):
    from medsam.segmentation import MedSAMSegmenter

    return MedSAMSegmenter(lite_medsam_model, store=embedding_store)


def test_description_covers_the_shared_data(description):
    names = {spec.name for spec in description.datasets}
    assert set(FLOORS) <= names and len(names) >= 13


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FLOORS))
def test_lite_medsam_accuracy(name, description, segmenter, capsys):
    cases, dsc_tight, dsc_perturbed, nsd_tight = FLOORS[name]
    spec = next(s for s in description.datasets if s.name == name)
    rows = evaluate_dataset(spec, segmenter, max_cases=cases)
    table = {t["setting"]: t for t in median_table(rows)}
    with capsys.disabled():
        print("\n" + table_markdown(list(table.values())))
    assert set(table) == set(BOX_SETTINGS)
    assert table["tight"]["dsc_median"] >= dsc_tight
    assert table["perturbed"]["dsc_median"] >= dsc_perturbed
    assert table["tight"]["nsd_median"] >= nsd_tight
