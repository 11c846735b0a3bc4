"""Statistics used in the MedSAM paper's evaluation.

* paired Wilcoxon signed-rank tests between methods (:func:`paired_wilcoxon`),
  with multiple-testing corrections written out here
  (:func:`holm`, :func:`benjamini_hochberg`);
* Pearson correlation with a Fisher-z confidence interval
  (:func:`pearson_with_ci`) and Bland-Altman agreement (:func:`bland_altman`)
  for tumour volumes.

All functions take plain sequences of floats and return frozen dataclasses or
arrays; none of them reads files.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CORRECTIONS",
    "WilcoxonResult",
    "PearsonResult",
    "BlandAltmanResult",
    "adjust_pvalues",
    "benjamini_hochberg",
    "bland_altman",
    "holm",
    "paired_wilcoxon",
    "pearson_with_ci",
]


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (family-wise error rate).

    ``p_(i) * (m - i + 1)`` in ascending order, made monotone by a running
    maximum and capped at 1; returned in the input order.
    """
    p, order = _sorted_pvalues(pvalues)
    m = p.size
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    return _in_input_order(adjusted, order)


def benjamini_hochberg(pvalues: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate).

    ``p_(i) * m / i`` in ascending order, made monotone by a running minimum
    from the largest down and capped at 1; returned in the input order.
    """
    p, order = _sorted_pvalues(pvalues)
    m = p.size
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    return _in_input_order(adjusted, order)


def _sorted_pvalues(pvalues: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(checked p-values as floats, the order that sorts them; stable)."""
    p = np.asarray(pvalues, dtype=float)
    if p.size:
        _check_pvalues(p)
    return p, np.argsort(p, kind="mergesort")


def _in_input_order(adjusted_sorted: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Adjusted p-values (in sorted order) capped at 1, put back in the input order."""
    out = np.empty(order.size)
    out[order] = np.minimum(adjusted_sorted, 1.0)
    return out


CORRECTIONS = {"holm": holm, "bh": benjamini_hochberg}
CORRECTION_NAMES = {"holm": "Holm-Bonferroni", "bh": "Benjamini-Hochberg"}


def adjust_pvalues(pvalues: ArrayLike, method: str = "holm") -> np.ndarray:
    """Adjust with ``method`` ("holm" or "bh"); NaN p-values stay NaN and do
    not count towards the number of tests."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose from {sorted(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    out[ok] = CORRECTIONS[method](p[ok])
    return out


def _check_pvalues(p: np.ndarray) -> None:
    if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError("p-values must lie in [0, 1]")


@dataclasses.dataclass(frozen=True)
class WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test of paired samples ``a - b``.

    ``median_difference`` is the median of the paired differences ``a - b``;
    ``pvalue`` is NaN when the test is undefined (fewer than 2 pairs, or all
    differences zero); ``n`` counts the pairs used (finite in both).
    """

    n: int
    median_difference: float
    statistic: float
    pvalue: float


def paired_wilcoxon(a_values: ArrayLike, b_values: ArrayLike) -> WilcoxonResult:
    """Wilcoxon signed-rank test (scipy, two-sided, zero differences dropped
    by the Wilcoxon method) of paired values; pairs with a non-finite value are
    left out."""
    from scipy import stats

    a, b = np.asarray(a_values, dtype=float), np.asarray(b_values, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} and {b.size}")
    ok = np.isfinite(a) & np.isfinite(b)
    diff = a[ok] - b[ok]
    n = int(diff.size)
    median = float(np.median(diff)) if n else math.nan
    if n < 2 or not np.any(diff != 0):
        return WilcoxonResult(n, median, math.nan, math.nan)
    res = stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    return WilcoxonResult(n, median, float(res.statistic), float(res.pvalue))


@dataclasses.dataclass(frozen=True)
class PearsonResult:
    """Pearson correlation ``r`` with its two-sided p-value and a Fisher-z
    confidence interval ``[ci_low, ci_high]`` at ``confidence``."""

    n: int
    r: float
    pvalue: float
    ci_low: float
    ci_high: float
    confidence: float


def pearson_with_ci(x_values: ArrayLike, y_values: ArrayLike, confidence: float = 0.95) -> PearsonResult:
    """Pearson r (scipy) and the Fisher-z interval
    ``tanh(atanh(r) +/- z_{(1+c)/2} / sqrt(n - 3))``; needs n >= 4 and
    non-constant inputs (else ValueError)."""
    from scipy import stats

    x, y = np.asarray(x_values, dtype=float), np.asarray(y_values, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.size} and {y.size}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n = x.size
    if n < 4:
        raise ValueError(f"Pearson correlation with a confidence interval needs at least 4 pairs, got {n}")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError("Pearson correlation is undefined for constant values")
    r, p = stats.pearsonr(x, y)
    r = float(np.clip(r, -1.0, 1.0))
    z = math.atanh(min(max(r, -1 + 1e-15), 1 - 1e-15))
    half = stats.norm.ppf((1 + confidence) / 2) / math.sqrt(n - 3)
    return PearsonResult(n, r, float(p), math.tanh(z - half), math.tanh(z + half), confidence)


@dataclasses.dataclass(frozen=True)
class BlandAltmanResult:
    """Bland-Altman agreement of ``a`` against ``b``: mean difference
    ``a - b`` (bias), its standard deviation (ddof 1) and the 95% limits of
    agreement ``bias +/- 1.96 sd``."""

    n: int
    mean_difference: float
    sd_difference: float
    lower_limit: float
    upper_limit: float


def bland_altman(a_values: ArrayLike, b_values: ArrayLike) -> BlandAltmanResult:
    """Bland-Altman statistics of paired measurements (needs n >= 2)."""
    a, b = np.asarray(a_values, dtype=float), np.asarray(b_values, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"Bland-Altman needs at least 2 pairs, got {a.size}")
    diff = a - b
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    return BlandAltmanResult(int(a.size), bias, sd, bias - 1.96 * sd, bias + 1.96 * sd)
