import csv

import numpy as np
import pytest

from medsam.evaluation.summary import summarize, summary_markdown, write_summary


def test_summary_values(method_tables, tmp_path):
    rows = method_tables["dilated"]
    summary = summarize(rows)
    assert [(s.method, s.task, s.label) for s in summary] == [("dilated", "CT lesion", 1), ("dilated", "lung CXR", 1)]
    lesion = summary[0]
    dsc = [r.dsc for r in rows if r.task == "CT lesion"]
    assert lesion.n_cases == 6
    assert lesion.metrics["dsc"].median == pytest.approx(np.median(dsc))
    assert lesion.metrics["dsc"].q1 == pytest.approx(np.percentile(dsc, 25))
    assert lesion.metrics["dsc"].mean == pytest.approx(np.mean(dsc))
    md = summary_markdown(summary)
    assert "DSC (%) median (IQR)" in md and "| dilated | CT lesion | 1 | 6 |" in md
    assert f"{np.median(dsc) * 100:.1f} (" in md
    csv_path, md_path = write_summary(summary, tmp_path / "s.csv", tmp_path / "s.md")
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert float(table[0]["dsc_median"]) == pytest.approx(np.median(dsc))
    assert md_path.read_text() == md
