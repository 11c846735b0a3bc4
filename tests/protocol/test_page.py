"""The protocol's results page, from real scores of two model-free methods (the box as
the mask, and the box shrunk by a quarter) on real data: the tables' figures are
checked against the rows they summarise, and the page is written from a folder laid
out as the steps leave it."""

import shlex
from pathlib import Path

import numpy as np
import pytest

from medsam.evaluation.units import by_image
from medsam.protocol import ProtocolConfig
from medsam.protocol.config import FINETUNED, PUBLISHED, UNET
from medsam.protocol.layout import manifest_rows, write_json
from medsam.protocol.page import (
    accuracy_markdown,
    command_line,
    gain_markdown,
    image_diagonals,
    load_tables,
    objects_markdown,
    write_page,
)
from medsam.protocol.predict import evaluate_methods
from tests.model_free import STARDIST, nuclei_rows, two_methods

CASES = {"jsrt": {"JPCLN001", "JPCLN002", "JPCLN003"}, "busi": {"10018", "10025", "10026"}}


@pytest.fixture
def tables(description):
    """Method -> rows (tight boxes) on three JSRT cases (internal) and three BUSI cases
    (external)."""
    methods = two_methods(PUBLISHED, FINETUNED)
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


def test_the_gain_table_pairs_images_and_splits_internal_from_external(tables, description):
    """One value per task and image: JSRT's three labels of an image are averaged into one."""
    text = gain_markdown({"tight": tables}, description)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 3   # header, internal, external
    assert "n (images)" in lines[0] and "one value per task and image" in text

    def per_image(method, task):
        values: dict = {}
        for r in tables[method]:
            if r.task == task:
                values.setdefault(r.case, []).append(r.dsc)
        return {case: np.mean(v) for case, v in values.items()}

    for line, (group, task) in zip(lines[1:], (("internal", "jsrt"), ("external", "busi"))):
        published, tuned = per_image(PUBLISHED, task), per_image(FINETUNED, task)
        a = np.array([published[c] for c in sorted(published)])
        b = np.array([tuned[c] for c in sorted(published)])
        objects = sum(r.task == task for r in tables[PUBLISHED])
        q1, q3 = np.percentile(100 * (b - a), [25, 75])
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:7] == ["tight", group, "3", str(objects), _pct(a), _pct(b),
                             f"{100 * np.median(b - a):+.1f} [{q1:+.1f}, {q3:+.1f}]"]
    assert objects == 3 and sum(r.task == "jsrt" for r in tables[PUBLISHED]) == 9
    assert "| tight |" not in gain_markdown({"tight": {PUBLISHED: tables[PUBLISHED]}}, description)


def test_the_accuracy_table_states_the_tolerance_and_how_strict_it_is(tables, description):
    text = accuracy_markdown(tables, description, {"jsrt": (2048, 2048), "busi": (500, 600)})
    header = next(line for line in text.splitlines() if line.startswith("| task |"))
    assert f"{PUBLISHED} NSD (2 px)" in header and "2 px / image diagonal" in header
    assert _cells(text, "jsrt: heart")[-1] == "0.07 % (2048 x 2048 px)"
    assert _cells(text, "busi: lesion")[-1] == f"{200 / np.hypot(500, 600):.2f} % (500 x 600 px)"


def test_the_command_line_runs_the_same_configuration(tmp_path):
    config = ProtocolConfig(Path("my data.json"), tmp_path / "out", data_root=Path("/data"),
                            finetune_minutes=2.5, max_cases=4, nsd_diagonal=0.5)
    words = shlex.split(command_line(config))
    assert words[:2] == ["medsam", "reproduce"]
    options = dict(zip(words[2::2], words[3::2]))
    assert options == {"-o": str(tmp_path / "out"), "--description": "my data.json", "--data": "/data",
                       "--finetune-minutes": "2.5", "--unet-minutes": "5", "--max-cases": "4",
                       "--nsd-diagonal": "0.5"}


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
    assert note == "5 sections in index.html"
    assert [line for line in page.splitlines() if line.startswith("## ")] == [
        "## How this run was made", "## Data", "## Methods", "## Accuracy with tight boxes",
        "## Fine-tuning: gain or loss on internal and external tasks", "## Files"]
    assert (out / "index.html").is_file() and (out / "report" / "tight" / "boxplot_dsc.png").is_file()
    assert "| predict | 1.0 | 2026-12-02 12:00:00 | 2 datasets scored |" in page
    assert "**not run: weights absent**" in page
    assert f"No {UNET} for" in page   # no U-Net was trained: its tasks say so
    sizes = image_diagonals(manifest_rows(out))
    assert sizes == {"jsrt": (2, 2), "busi": (2, 2)}
    assert accuracy_markdown(load_tables(out, "tight"), description, sizes) in page
    assert list(load_tables(out, "tight")) == [PUBLISHED, FINETUNED]


def test_objects_of_one_image_count_once_and_come_back_as_a_labelled_secondary_analysis(shared_data):
    """stardist's one image of 125 nuclei: n = 1 image and no test in the primary tables;
    the objects' table says what it is."""
    from medsam.datasets.description import parse_description

    description = parse_description({"datasets": [STARDIST]}, shared_data)
    tables = nuclei_rows(shared_data, PUBLISHED, FINETUNED)
    assert len(tables[PUBLISHED]) == 125
    cells = _cells(accuracy_markdown(tables, description), "stardist")
    assert cells[1:4] == ["external", "1", "125"]   # role, images, objects
    gain = gain_markdown({"tight": tables}, description)
    assert _cells(gain, "tight")[1:4] == ["external", "1", "125"] and _cells(gain, "tight")[-1] == "n/a"
    objects = objects_markdown(tables, description)
    assert "not independent" in objects and "descriptive only" in objects
    line = _cells(objects, "stardist")
    assert line[1:3] == ["1", "125"] and line[-1].endswith(tuple("0123456789")) and ", p " in line[-1]
    assert objects_markdown({m: by_image(v) for m, v in tables.items()}, description) == ""
