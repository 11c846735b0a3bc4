"""The protocol's results page, from real scores of two model-free methods (the box as
the mask, and the box shrunk by a quarter) on real data: the tables' figures are
checked against the rows they summarise, and the page is written from a folder laid
out as the steps leave it."""

import shlex
from pathlib import Path

import numpy as np
import pytest

from medsam.protocol import ProtocolConfig
from medsam.protocol.config import FINETUNED, PUBLISHED, UNET
from medsam.protocol.layout import write_json
from medsam.protocol.page import accuracy_markdown, command_line, gain_markdown, load_tables, write_page
from medsam.protocol.predict import evaluate_methods
from medsam.segmentation import CallableSegmenter

CASES = {"jsrt": {"JPCLN001", "JPCLN002", "JPCLN003"}, "busi": {"10018", "10025", "10026"}}


def box_as_mask(image, box, shrink=0.0):
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = box
    dx, dy = shrink * (x1 - x0) / 2, shrink * (y1 - y0) / 2
    mask[int(round(y0 + dy)):int(round(y1 - dy)) + 1, int(round(x0 + dx)):int(round(x1 - dx)) + 1] = True
    return mask


@pytest.fixture
def tables(description):
    """Method -> rows (tight boxes) on three JSRT cases (internal) and three BUSI cases
    (external)."""
    methods = {PUBLISHED: CallableSegmenter(box_as_mask),
               FINETUNED: CallableSegmenter(lambda image, box: box_as_mask(image, box, 0.25))}
    out: dict = {}
    for spec in description.datasets:
        if spec.name in CASES:
            for row in evaluate_methods(spec, methods, CASES[spec.name], ("tight",))["tight"]:
                out.setdefault(row.method, []).append(row)
    return out


def _cells(markdown, first):
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def _pct(values):
    q1, med, q3 = np.percentile(100 * np.asarray(values), [25, 50, 75])
    return f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def test_the_accuracy_table_summarises_each_task_and_label(tables, description):
    text = accuracy_markdown(tables, description)
    heart = [r for r in tables[PUBLISHED] if (r.task, r.label) == ("jsrt", 3)]
    cells = _cells(text, "jsrt: heart")
    assert cells[1:3] == ["internal", "3"]
    assert cells[3] == _pct([r.dsc for r in heart])      # LiteMedSAM DSC
    assert cells[5] == _pct([r.nsd for r in heart])      # LiteMedSAM NSD
    assert _cells(text, "busi: lesion")[1:3] == ["external", "3"]
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in lines[1:]] == [
        "jsrt: right_lung", "jsrt: left_lung", "jsrt: heart", "busi: lesion"]   # description order


def test_the_gain_table_pairs_cases_and_splits_internal_from_external(tables, description):
    text = gain_markdown({"tight": tables}, description)
    lines = text.splitlines()
    assert len(lines) == 4   # header, rule, internal, external
    tuned = {r.key: r.dsc for r in tables[FINETUNED]}
    for line, (group, task) in zip(lines[2:], (("internal", "jsrt"), ("external", "busi"))):
        a, b = np.array([(r.dsc, tuned[r.key]) for r in tables[PUBLISHED] if r.task == task]).T
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:6] == ["tight", group, str(len(a)), f"{100 * np.median(a):.1f}", f"{100 * np.median(b):.1f}",
                             f"{100 * np.median(b - a):+.1f}"]
    assert gain_markdown({"tight": {PUBLISHED: tables[PUBLISHED]}}, description).count("\n") == 2


def test_the_command_line_runs_the_same_configuration(tmp_path):
    config = ProtocolConfig(Path("my data.json"), tmp_path / "out", data_root=Path("/data"),
                            finetune_minutes=2.5, max_cases=4)
    words = shlex.split(command_line(config))
    assert words[:2] == ["medsam", "reproduce"]
    options = dict(zip(words[2::2], words[3::2]))
    assert options == {"-o": str(tmp_path / "out"), "--description": "my data.json", "--data": "/data",
                       "--finetune-minutes": "2.5", "--unet-minutes": "5", "--max-cases": "4"}


def test_the_page_is_written_from_what_the_steps_left(tables, description, tmp_path):
    from medsam.evaluation.results import write_results
    from medsam.training.manifest import write_manifest

    out = tmp_path / "run"
    for task in CASES:
        write_results([r for rows in tables.values() for r in rows if r.task == task],
                      out / "results" / "tight" / f"{task}.csv")
    rows = [{"dataset": r.task, "modality": "xray", "case": r.case, "slice": -1, "tile_y": 0, "tile_x": 0,
             "file": f"{r.case}.npz", "label": r.label, "name": "x", "x0": 0, "y0": 0, "x1": 1, "y1": 1,
             "pixels": 1, "height": 2, "width": 2, "split": "validation"} for r in tables[PUBLISHED]]
    write_manifest(rows, out / "prepared" / "manifest.csv")
    write_json(out / "steps.json", {"predict": {"seconds": 60.0, "note": "2 datasets scored",
                                                "finished": "2026-12-02 12:00:00"}})
    config = ProtocolConfig(Path("protocol.json"), out, settings=("tight",), sam_weights=str(tmp_path / "none.pth"))

    note = write_page(config, description)
    page = (out / "index.md").read_text()
    assert note == f"5 sections in {out / 'index.html'}"
    assert [line for line in page.splitlines() if line.startswith("## ")] == [
        "## How this run was made", "## Data", "## Methods", "## Accuracy with tight boxes",
        "## Fine-tuning: gain or loss on internal and external tasks", "## Files"]
    assert (out / "index.html").is_file() and (out / "report" / "tight" / "boxplot_dsc.png").is_file()
    assert "| predict | 1.0 | 2026-12-02 12:00:00 | 2 datasets scored |" in page
    assert "**not run: weights absent**" in page
    assert f"No {UNET} for" in page   # no U-Net was trained: its tasks say so
    assert accuracy_markdown(load_tables(out, "tight"), description) in page
    assert list(load_tables(out, "tight")) == [PUBLISHED, FINETUNED]
