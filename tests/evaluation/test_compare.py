import dataclasses

import numpy as np
import pytest
from scipy import stats

from medsam.errors import InputError
from medsam.evaluation.compare import compare_methods, comparison_markdown, write_comparison
from medsam.evaluation.stats import holm


def test_wilcoxon_per_task(method_tables, tmp_path):
    rows = compare_methods(method_tables, ("dsc", "nsd"), correction="holm")
    assert [(r.task, r.metric) for r in rows] == [("CT lesion", "dsc"), ("CT lesion", "nsd"),
                                                  ("lung CXR", "dsc"), ("lung CXR", "nsd")]
    lesion = rows[0]
    a = np.array([r.dsc for r in method_tables["dilated"] if r.task == "CT lesion"])
    b = np.array([r.dsc for r in method_tables["shifted"] if r.task == "CT lesion"])
    assert lesion.n == 6
    assert lesion.pvalue == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert lesion.median_difference == pytest.approx(np.median(a - b))
    tested = [r for r in rows if not np.isnan(r.pvalue)]  # NaN: all paired differences zero
    assert len(tested) >= 3
    np.testing.assert_allclose([r.p_adjusted for r in tested], holm([r.pvalue for r in tested]))
    assert all(r.correction == "Holm-Bonferroni" for r in rows)
    bh = compare_methods(method_tables, ("dsc",), correction="bh")
    assert bh[0].correction == "Benjamini-Hochberg"
    text = comparison_markdown(rows)
    assert "Holm-Bonferroni" in text and "Wilcoxon" in text
    csv_path, md_path = write_comparison(rows, tmp_path / "c.csv", tmp_path / "c.md")
    assert csv_path.read_text().startswith("task,label,metric,method_a")


def test_missing_cases_are_an_error(method_tables):
    tables = {"dilated": method_tables["dilated"], "shifted": method_tables["shifted"][1:]}
    with pytest.raises(InputError, match="has no result for 1 case"):
        compare_methods(tables)
    rows = compare_methods(tables, allow_missing=True)
    assert rows[0].n == 5
    with pytest.raises(InputError, match="at least two"):
        compare_methods({"dilated": method_tables["dilated"]})


def test_three_methods(method_tables):
    third = [dataclasses.replace(r, method="third", dsc=r.dsc * 0.9) for r in method_tables["dilated"]]
    tables = {**method_tables, "third": third}
    rows = compare_methods(tables, ("dsc",))
    pairs = {(r.method_a, r.method_b) for r in rows}
    assert pairs == {("dilated", "shifted"), ("dilated", "third"), ("shifted", "third")}


def test_baseline_against_each_other_method_with_holm_per_task(method_tables):
    third = [dataclasses.replace(r, method="third", dsc=r.dsc * 0.9, nsd=r.nsd * 0.8)
             for r in method_tables["dilated"]]
    tables = {**method_tables, "third": third}
    rows = compare_methods(tables, ("dsc", "nsd"), baseline="shifted", family="task")
    assert {(r.method_a, r.method_b) for r in rows} == {("shifted", "dilated"), ("shifted", "third")}
    for task in ("CT lesion", "lung CXR"):
        mine = [r for r in rows if r.task == task and not np.isnan(r.pvalue)]
        assert len(mine) >= 2
        np.testing.assert_allclose([r.p_adjusted for r in mine], holm([r.pvalue for r in mine]))
    assert all(r.correction == "Holm-Bonferroni per task" for r in rows)
    assert "within each task" in comparison_markdown(rows)
    # per task, the adjustment counts fewer tests than over the run: never larger p-values
    whole = {(r.task, r.metric, r.method_b): r.p_adjusted
             for r in compare_methods(tables, ("dsc", "nsd"), baseline="shifted")}
    for r in rows:
        if not np.isnan(r.p_adjusted):
            assert r.p_adjusted <= whole[(r.task, r.metric, r.method_b)] + 1e-12
    with pytest.raises(InputError, match="baseline"):
        compare_methods(tables, baseline="nobody")
    with pytest.raises(InputError, match="family"):
        compare_methods(tables, family="everything")
