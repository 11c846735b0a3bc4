import math

import pytest

from medsam.errors import InputError
from medsam.evaluation.results import RESULT_COLUMNS, load_tables, read_results, write_results


def test_round_trip(method_tables, tmp_path):
    rows = method_tables["dilated"]
    path = write_results(rows, tmp_path / "r.csv")
    back = read_results(path)
    assert back == rows
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == RESULT_COLUMNS


def test_inf_survives(method_tables, tmp_path):
    import dataclasses

    row = dataclasses.replace(method_tables["dilated"][0], hd95=math.inf, nsd=0.0)
    back = read_results(write_results([row], tmp_path / "r.csv"))
    assert math.isinf(back[0].hd95)


def test_bad_tables(tmp_path, method_tables):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="missing columns"):
        read_results(tmp_path / "x.csv")
    with pytest.raises(InputError, match="cannot read"):
        read_results(tmp_path / "missing.csv")
    path = write_results(method_tables["dilated"][:2], tmp_path / "bad.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[4], "abc", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="line 3"):
        read_results(path)
    dup = write_results(method_tables["dilated"][:1] * 2, tmp_path / "dup.csv")
    with pytest.raises(InputError, match="duplicate"):
        read_results(dup)
    (tmp_path / "empty.csv").write_text(",".join(RESULT_COLUMNS) + "\n")
    with pytest.raises(InputError, match="no rows"):
        read_results(tmp_path / "empty.csv")


def test_load_tables_names(result_csvs):
    tables, sources = load_tables(result_csvs)
    assert list(tables) == ["dilated", "shifted"]
    tables, _ = load_tables(result_csvs, ["A", "B"])
    assert list(tables) == ["A", "B"] and all(r.method == "A" for r in tables["A"])
    with pytest.raises(InputError, match="also comes from"):
        load_tables([result_csvs[0], result_csvs[0]])
    with pytest.raises(InputError, match="names given"):
        load_tables(result_csvs, ["A"])


def test_result_columns_are_task_method_and_the_case_metrics():
    """A result row is a CaseMetrics with its task and method: one schema, in order."""
    import dataclasses

    from medsam.evaluation.results import RESULT_COLUMNS, ResultRow
    from medsam.metrics.case import CaseMetrics

    expected = ("task", "method", *(f.name for f in dataclasses.fields(CaseMetrics)), "image")
    assert RESULT_COLUMNS == expected
    assert issubclass(ResultRow, CaseMetrics)   # a metric is added once, to CaseMetrics
    assert {f.name for f in dataclasses.fields(ResultRow)} == set(expected)
