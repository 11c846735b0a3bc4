import pytest

pytest.importorskip("matplotlib")

from medsam.errors import InputError  # noqa: E402
from medsam.evaluation.report import ReportConfig, build_report  # noqa: E402


def test_report_folder(method_tables, tmp_path):
    out = tmp_path / "report"
    index = build_report(method_tables, out)
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "index.md", "summary.csv", "summary.md", "comparison.csv", "comparison.md",
            "boxplot_dsc.png", "boxplot_nsd.png", "volume_agreement.csv", "volumes_dilated.png",
            "bland_altman_dilated.png"} <= names
    html = index.read_text()
    for image in ("boxplot_dsc.png", "volumes_dilated.png", "bland_altman_dilated.png"):
        assert f'src="{image}"' in html
    assert "Holm-Bonferroni" in html and "Pearson r" in html
    assert "![boxplot_nsd.png](boxplot_nsd.png)" in (out / "index.md").read_text()
    with pytest.raises(InputError, match="exists"):
        build_report(method_tables, out)
    build_report(method_tables, out, ReportConfig(metrics=("dsc",), correction="bh"), overwrite=True)
    assert not (out / "boxplot_nsd.png").exists()
    assert "Benjamini-Hochberg" in (out / "comparison.md").read_text()


def test_single_method_report(method_tables, tmp_path):
    out = tmp_path / "one"
    build_report({"dilated": method_tables["dilated"]}, out)
    assert not (out / "comparison.csv").exists() and (out / "summary.md").exists()


def test_failed_report_leaves_nothing(method_tables, tmp_path):
    tables = {"dilated": method_tables["dilated"], "shifted": method_tables["shifted"][2:]}
    with pytest.raises(InputError, match="no result"):
        build_report(tables, tmp_path / "r")
    assert list(tmp_path.iterdir()) == []


def test_report_html_renders_markdown_names_methods_and_is_readable_by_others(method_tables, tmp_path,
                                                                              monkeypatch):
    import os
    import stat

    from medsam.evaluation import plots

    titles = []
    real = plots.bland_altman_plot
    monkeypatch.setattr(plots, "bland_altman_plot",   # the real plot, recording which method it names
                        lambda *a, **k: titles.append(k.get("method")) or real(*a, **k))
    index = build_report(method_tables, tmp_path / "report", sources={"dilated": "a.csv", "shifted": "b.csv"})
    mask = os.umask(0o022)
    os.umask(mask)
    html = index.read_text()
    assert "`" not in html and "<code>a.csv</code>" in html     # Markdown code, not literal backticks
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o777 & ~mask   # not mkdtemp's 0700
    assert sorted(titles) == ["dilated", "shifted"]
