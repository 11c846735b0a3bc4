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


def test_pixel_units_when_the_spacing_is_unknown():
    """Images without a physical pixel size: sizes are counts, HD95 in px, and the tables
    say so instead of calling pixels millimetres."""
    import numpy as np

    from medsam.evaluation.results import rows_from_metrics
    from medsam.evaluation.summary import summarize, summary_markdown
    from medsam.metrics import evaluate_labels

    gt = np.zeros((40, 40), np.uint8)
    gt[10:20, 10:20] = 1
    pred = np.roll(gt, 3, axis=1)
    known = evaluate_labels(pred, gt, (0.5, 0.5), case="a")
    unknown = evaluate_labels(pred, gt, (1.0, 1.0), case="a", spacing_known=False)
    assert (known[0].volume_unit, known[0].length_unit) == ("mm2", "mm")
    assert (unknown[0].volume_unit, unknown[0].length_unit) == ("pixels", "px")
    assert unknown[0].gt_volume == 100 and known[0].gt_volume == 25.0
    assert unknown[0].hd95 == 3.0 and known[0].hd95 == 1.5
    text = summary_markdown(summarize(rows_from_metrics(unknown, "t", "m")))
    assert "HD95 (px)" in text and "HD95 (mm)" not in text
    mixed = summarize(rows_from_metrics(unknown, "t", "m") + rows_from_metrics(known, "u", "m"))
    assert "| 3.00 (3.00-3.00) px |" in summary_markdown(mixed).replace("  ", " ")


def test_metric_titles_carry_the_unit():
    from medsam.evaluation.results import ResultRow
    from medsam.evaluation.summary import metric_title

    def row(unit):
        return ResultRow("c", 1, 0.9, 0.8, 1.0, 10, 10, 10.0, 10.0, unit, task="t", method="m")

    assert metric_title("dsc") == "DSC (%)"
    assert metric_title("hd95", [row("mL")]) == "HD95 (mm)"
    assert metric_title("hd95", [row("pixels")]) == "HD95 (px)"
    assert metric_title("hd95", [row("pixels"), row("mm2")]) == "HD95 (mm or px)"
