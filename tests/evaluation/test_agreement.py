"""The accuracy guard: agreement between label maps, and bf16 against the exact path
with the real LiteMedSAM weights on real images of ../shared/data."""

import numpy as np
import pytest

from medsam.evaluation.agreement import AgreementRow, compare_modes, label_agreement, summarise
from medsam.precision import GUARD_AGREEMENT, GUARD_DSC_POINTS


def test_label_agreement_is_dice_over_matching_labels():
    a = np.zeros((10, 10), np.uint8)
    a[:4, :5] = 1      # 20 voxels
    a[6:, 6:] = 2      # 16 voxels
    assert label_agreement(a, a) == 1.0
    assert label_agreement(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
    assert label_agreement(a, np.zeros_like(a)) == 0.0
    swapped = np.where(a == 1, 2, np.where(a == 2, 1, 0))
    assert label_agreement(a, swapped) == 0.0  # same voxels, other objects
    b = a.copy()
    b[0, :5] = 0       # 5 voxels of object 1 lost
    assert label_agreement(a, b) == pytest.approx(2 * 31 / (36 + 31))
    with pytest.raises(ValueError, match="shape"):
        label_agreement(a, a[:5])


def test_summary_passes_only_within_both_limits():
    good = AgreementRow("d", "c1", "tight", 0.999, (0.90, 0.80), (0.901, 0.80))
    low = AgreementRow("d", "c2", "tight", GUARD_AGREEMENT - 0.001, (0.90,), (0.90,))
    (summary,) = summarise([good])
    assert summary.passed and summary.images == 1 and summary.min_agreement == 0.999
    assert not summarise([good, low])[0].passed
    shifted = AgreementRow("e", "c", "tight", 1.0, (0.90,), (0.90 + (GUARD_DSC_POINTS + 0.1) / 100,))
    assert [s.dataset for s in summarise([good, shifted])] == ["d", "e"]
    assert not summarise([shifted])[0].passed


@pytest.fixture(scope="module")
def segmenters(lite_medsam_model):
    from medsam.segmentation import MedSAMSegmenter

    return (MedSAMSegmenter(lite_medsam_model, precision="exact"),
            MedSAMSegmenter(lite_medsam_model, precision="bf16"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jsrt", "hc18"])
def test_bf16_keeps_median_dsc_but_not_per_image_agreement(name, description, segmenters):
    """What docs/performance.md and medsam.precision state: bf16 keeps each dataset's
    median DSC within the guard, while some images agree with exact to only 98-99 %, below
    the 99.5 % the guard asks (so precision="auto" does not pick it)."""
    spec = next(s for s in description.datasets if s.name == name)
    rows = compare_modes(spec, *segmenters, max_cases=4)
    (summary,) = summarise(rows)
    assert summary.images == 4
    assert abs(summary.dsc_change_points) <= GUARD_DSC_POINTS
    assert 0.97 <= summary.min_agreement < GUARD_AGREEMENT
    assert not summary.passed


@pytest.mark.slow
def test_exact_mode_agrees_with_itself(description, lite_medsam_model, segmenters):
    """Two exact segmenters (separate embedding caches) give identical label maps."""
    from medsam.segmentation import MedSAMSegmenter

    spec = next(s for s in description.datasets if s.name == "kvasir")
    rows = compare_modes(spec, segmenters[0], MedSAMSegmenter(lite_medsam_model, precision="exact"),
                         max_cases=2)
    assert [r.agreement for r in rows] == [1.0, 1.0]
    assert all(r.dsc_exact == r.dsc_fast for r in rows)
