import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from medsam.evaluation.experts import compare_with_experts, write_expert_comparison  # noqa: E402
from medsam.evaluation.plots import bland_altman_plot, box_plot, volume_scatter_plot  # noqa: E402
from medsam.evaluation.volumes import volume_agreement, volume_pairs  # noqa: E402


def assert_png(path, min_size=(300, 250)):
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        arr = np.asarray(im.convert("L"))
    assert arr.std() > 5  # something is drawn
    assert not list(path.parent.glob(f".{path.name}*"))  # no temp files left


def test_box_plot(method_tables, tmp_path):
    values = {}
    for method, rows in method_tables.items():
        for r in rows:
            values.setdefault((r.task, method), []).append(r.dsc * 100)
    values[("lung CXR", "dilated")].append(float("inf"))  # non-finite values are left out
    path = box_plot(values, ["CT lesion", "lung CXR"], list(method_tables), "DSC (%)", tmp_path / "b.png")
    assert_png(path)


def test_volume_plots(method_tables, tmp_path):
    pred, ref = volume_pairs(method_tables["dilated"])
    a = volume_agreement(pred, ref)
    assert_png(volume_scatter_plot(pred, ref, tmp_path / "s.png", r=a.pearson.r,
                                   ci=(a.pearson.ci_low, a.pearson.ci_high)))
    ba = a.bland_altman
    assert_png(bland_altman_plot(pred, ref, tmp_path / "ba.png", ba.mean_difference, ba.lower_limit,
                                 ba.upper_limit))


def test_expert_outputs(tmp_path):
    rng = np.random.default_rng(1)
    base = np.zeros((40, 40), bool)
    base[10:30, 10:30] = True
    raters = {f"e{i}": [np.roll(base, int(rng.integers(-2, 3)), axis=1) for _ in range(5)] for i in range(3)}
    scores = compare_with_experts(raters, [f"c{i}" for i in range(5)], model=[base] * 5)
    written = write_expert_comparison(scores, tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["experts.csv", "experts.md", "experts.png", "experts_scores.csv"]
    assert "consensus without e0" in (tmp_path / "experts.md").read_text()
    assert_png(tmp_path / "experts.png")


def test_plots_leave_the_users_matplotlib_alone(tmp_path):
    """No backend switch, no pyplot: figures are Figure objects on their own canvas."""
    import subprocess
    import sys

    code = (
        "import sys, matplotlib\n"
        "matplotlib.use('pdf')\n"
        "from medsam.evaluation.plots import volume_scatter_plot\n"
        f"volume_scatter_plot([1, 2, 3], [1.5, 2, 2.5], {str(tmp_path / 'v.png')!r})\n"
        "assert matplotlib.get_backend() == 'pdf', matplotlib.get_backend()\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "v.png")


def test_box_plot_wraps_many_tasks_onto_rows(tmp_path):
    from PIL import Image

    from medsam.evaluation.plots import BOX_PLOT_ROW

    groups = [f"task{i}" for i in range(2 * BOX_PLOT_ROW + 3)]
    values = {(g, m): [0.5 + 0.01 * i, 0.6] for i, g in enumerate(groups) for m in ("a", "b")}
    few = Image.open(box_plot(values, groups[:BOX_PLOT_ROW], ["a", "b"], "DSC (%)", tmp_path / "few.png"))
    many = Image.open(box_plot(values, groups, ["a", "b"], "DSC (%)", tmp_path / "many.png"))
    assert many.height > 2.5 * few.height        # three rows
    assert many.width < 1.2 * few.width           # not one ever wider row
