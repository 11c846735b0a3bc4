"""The unit of analysis, on stardist's real image of 125 nuclei scored one by one: two
model-free methods (the box as the mask, and the box shrunk by a quarter) give 125 rows
each, of one image."""

import dataclasses

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.evaluation.compare import compare_methods, comparison_markdown
from medsam.evaluation.report import ReportConfig, build_report
from medsam.evaluation.results import read_results, write_results
from medsam.evaluation.summary import summarize, summary_markdown
from medsam.evaluation.units import analysis_rows, by_image, has_objects, pooled_by_image
from tests.model_free import nuclei_rows


@pytest.fixture(scope="module")
def nuclei(shared_data):
    """Method -> the 125 object rows of stardist's one evaluation image."""
    return nuclei_rows(shared_data)


def test_one_image_of_125_objects_is_one_case_and_no_test(nuclei):
    assert [len(rows) for rows in nuclei.values()] == [125, 125]
    assert len({r.image for rows in nuclei.values() for r in rows}) == 1
    assert all(r.case.startswith(f"{r.image}#") and r.label == 1 for r in nuclei["box"])
    assert len({r.case for r in nuclei["box"]}) == 125
    by_images = compare_methods(nuclei, ("dsc", "nsd"))
    assert [(r.metric, r.n) for r in by_images] == [("dsc", 1), ("nsd", 1)]
    assert all(np.isnan(r.pvalue) and not r.significant and r.family_size == 0 for r in by_images)
    assert "paired images (n: images)" in comparison_markdown(by_images)
    # objects, asked for, are 125 pairs with a test
    by_objects = compare_methods(nuclei, ("dsc",), unit="object")
    assert by_objects[0].n == 125 and by_objects[0].pvalue < 1e-6 and by_objects[0].unit == "object"


def test_an_image_value_is_the_mean_over_its_objects(nuclei):
    rows = nuclei["box"]
    (image,) = by_image(rows)
    assert image.case == image.image == rows[0].image
    assert image.dsc == pytest.approx(np.mean([r.dsc for r in rows]))
    assert image.nsd == pytest.approx(np.mean([r.nsd for r in rows]))
    assert image.gt_voxels == sum(r.gt_voxels for r in rows)
    assert analysis_rows(rows, "object") == rows
    (pooled,) = pooled_by_image(rows)
    assert pooled.label == 0 and pooled.dsc == pytest.approx(image.dsc)
    assert has_objects(rows) and not has_objects([image])
    with pytest.raises(InputError, match="unknown unit of analysis 'pixel'"):
        analysis_rows(rows, "pixel")


def test_rows_of_whole_images_are_their_own_units(method_tables):
    rows = method_tables["dilated"]
    assert by_image(rows) == rows
    assert not has_objects(rows)


def test_summaries_count_images_and_report_the_objects(nuclei):
    (box, _) = summarize([r for rows in nuclei.values() for r in rows])
    assert (box.n_cases, box.n_objects, box.unit) == (1, 125, "image")
    assert box.metrics["dsc"].median == pytest.approx(np.mean([r.dsc for r in nuclei["box"]]))
    text = summary_markdown(summarize(nuclei["box"]))
    header = text.splitlines()[0]
    assert "n (images)" in header and "objects" in header and "NSD (%, tolerance 2 px)" in header
    (objects,) = summarize(nuclei["box"], unit="object")
    assert (objects.n_cases, objects.n_objects) == (125, 125)
    assert objects.metrics["dsc"].median == pytest.approx(np.median([r.dsc for r in nuclei["box"]]))


def test_the_report_leads_with_images_and_adds_objects_as_a_labelled_secondary_analysis(nuclei, tmp_path):
    build_report(nuclei, tmp_path / "r", ReportConfig(metrics=("dsc", "nsd")))
    page = (tmp_path / "r" / "index.md").read_text()
    titles = [line for line in page.splitlines() if line.startswith("## ")]
    assert titles[1:7] == ["## Summary per task and label", "## Paired comparison (Wilcoxon signed-rank)",
                           "## Box plots", "## Summary per task and label (objects as units, secondary)",
                           "## Paired comparison (Wilcoxon signed-rank) (objects as units, secondary)",
                           "## Box plots (objects as units, secondary)"]
    assert "not independent" in page
    assert (tmp_path / "r" / "comparison_objects.csv").is_file()
    assert (tmp_path / "r" / "boxplot_nsd_objects.png").is_file()
    first = (tmp_path / "r" / "comparison.md").read_text()
    assert "| stardist | 1 | dsc | box | shrunk | 1 |" in first


def test_the_image_column_survives_a_table_and_old_tables_read_as_whole_images(nuclei, tmp_path):
    path = write_results(nuclei["box"], tmp_path / "objects.csv")
    assert read_results(path) == nuclei["box"]
    old = tmp_path / "old.csv"   # a table written before the image and tolerance columns
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, c in enumerate(header) if c not in ("image", "nsd_tolerance", "nsd_diagonal_pct")]
    old.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n")
    rows = read_results(old)
    assert [r.image for r in rows] == [r.case for r in nuclei["box"]]
    assert all(np.isnan(r.nsd_tolerance) for r in rows)
    assert [dataclasses.replace(r, image=o.image, nsd_tolerance=o.nsd_tolerance) for r, o
            in zip(rows, nuclei["box"])] == nuclei["box"]
    assert "tolerance not recorded" in summary_markdown(summarize(rows))
