import math

import numpy as np
import pytest
from scipy import stats as sps

from medsam.evaluation.stats import (
    adjust_pvalues,
    benjamini_hochberg,
    bland_altman,
    holm,
    paired_wilcoxon,
    pearson_with_ci,
)

P = [0.01, 0.04, 0.03, 0.005]


def test_holm_known_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    np.testing.assert_allclose(holm(P), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def test_bh_known_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4/1, x4/2, x4/3, x4/4 = 0.02, 0.02, 0.04, 0.04
    np.testing.assert_allclose(benjamini_hochberg(P), [0.02, 0.04, 0.04, 0.02])
    # the classic example of Benjamini & Hochberg style step-up with a running minimum
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05] * 5)


def test_against_scipy_false_discovery_control():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, 30)
    np.testing.assert_allclose(benjamini_hochberg(p), sps.false_discovery_control(p, method="bh"))


def test_adjust_keeps_nan_and_rejects_unknown():
    out = adjust_pvalues([0.01, math.nan, 0.02], "holm")
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.02, 0.02])
    with pytest.raises(ValueError, match="correction"):
        adjust_pvalues(P, "bonf")
    with pytest.raises(ValueError):
        holm([1.5])


def test_paired_wilcoxon():
    a = np.array([0.91, 0.85, 0.88, 0.95, 0.80, 0.93, 0.87, 0.90])
    b = a - np.array([0.05, 0.02, 0.04, 0.01, 0.06, 0.03, 0.02, 0.04])
    res = paired_wilcoxon(a, b)
    assert res.n == 8 and res.median_difference == pytest.approx(0.035)
    assert res.pvalue == pytest.approx(sps.wilcoxon(a - b).pvalue)
    assert res.pvalue < 0.05
    same = paired_wilcoxon(a, a)
    assert math.isnan(same.pvalue) and same.median_difference == 0
    with_inf = paired_wilcoxon([1, 2, math.inf], [0, 1, 2])
    assert with_inf.n == 2


def test_pearson_ci():
    x = np.arange(10.0)
    y = x + np.array([0.1, -0.2, 0.3, 0.0, -0.1, 0.2, -0.3, 0.1, 0.0, -0.1])
    res = pearson_with_ci(x, y)
    r = np.corrcoef(x, y)[0, 1]
    assert res.r == pytest.approx(r)
    z, half = math.atanh(r), 1.959963984540054 / math.sqrt(7)
    assert res.ci_low == pytest.approx(math.tanh(z - half))
    assert res.ci_high == pytest.approx(math.tanh(z + half))
    assert res.ci_low < res.r < res.ci_high
    with pytest.raises(ValueError, match="at least 4"):
        pearson_with_ci([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="constant"):
        pearson_with_ci([1, 1, 1, 1], [1, 2, 3, 4])


def test_bland_altman():
    a = [10.0, 20.0, 30.0, 40.0]
    b = [9.0, 21.0, 28.0, 38.0]
    res = bland_altman(a, b)
    d = np.array([1.0, -1.0, 2.0, 2.0])
    assert res.mean_difference == pytest.approx(d.mean())
    assert res.sd_difference == pytest.approx(d.std(ddof=1))
    assert res.upper_limit == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
    with pytest.raises(ValueError):
        bland_altman([1.0], [1.0])
