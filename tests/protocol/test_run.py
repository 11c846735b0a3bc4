"""``medsam reproduce`` end to end on a small real description: every step, the results
page, and a second run that resumes instead of redoing."""

import json

import pytest

from medsam.evaluation.results import read_results
from medsam.protocol import ProtocolConfig, run_protocol
from medsam.protocol.config import FINETUNED, PUBLISHED, UNET

from .descriptions import small_description


@pytest.fixture(scope="module")
def protocol_run(shared_data, lite_medsam_checkpoint, tmp_path_factory):
    import os

    folder = tmp_path_factory.mktemp("protocol")
    before = os.environ.get("MEDSAM_HOME")
    os.environ["MEDSAM_HOME"] = str(folder / "empty_cache")  # no SAM weights cached here
    try:
        config = ProtocolConfig(small_description(folder, shared_data), folder / "results",
                                finetune_minutes=0.1, unet_minutes=0.1, max_cases=4,
                                published=str(lite_medsam_checkpoint), device="cpu", progress=False)
        lines: list[str] = []
        index = run_protocol(config, log=lines.append)
        again: list[str] = []
        run_protocol(config, log=again.append)
        yield config, index, lines, again
    finally:
        if before is None:
            os.environ.pop("MEDSAM_HOME", None)
        else:
            os.environ["MEDSAM_HOME"] = before


@pytest.mark.slow
def test_every_step_ran_and_every_method_scored_every_task(protocol_run):
    config, index, lines, _ = protocol_run
    steps = json.loads((config.out / "steps.json").read_text())
    assert list(steps) == list(config.steps)
    assert all(info["seconds"] >= 0 for info in steps.values())
    for setting in ("tight", "perturbed"):
        for task, cases in (("jsrt", 2), ("busi", 4), ("recist", 4), ("drive", 2)):
            rows = read_results(config.out / "results" / setting / f"{task}.csv")
            # no CT dataset is trained on here: recist has no U-Net
            assert {r.method for r in rows} == {PUBLISHED, FINETUNED} | ({UNET} if task != "recist" else set())
            assert len({r.case for r in rows}) == cases
    # the U-Nets: one per category with training data (grey: jsrt; RGB: drive); CT has none
    assert (config.out / "train" / "unet_grey" / "last.pth").is_file()
    assert (config.out / "train" / "unet_RGB" / "last.pth").is_file()
    assert not (config.out / "train" / "unet_CT").exists()
    assert (config.out / "train" / "finetune" / "best.pth").is_file()


@pytest.mark.slow
def test_published_model_is_accurate_on_the_evaluation_cases(protocol_run):
    import numpy as np

    config = protocol_run[0]
    rows = [r for r in read_results(config.out / "results" / "tight" / "busi.csv") if r.method == PUBLISHED]
    assert np.median([r.dsc for r in rows]) > 0.85   # external breast ultrasound, zero-shot
    lungs = [r for r in read_results(config.out / "results" / "tight" / "jsrt.csv")
             if r.method == PUBLISHED and r.label in (1, 2)]
    assert min(r.dsc for r in lungs) > 0.9


@pytest.mark.slow
def test_results_page_shows_tables_tests_plots_volumes_and_raters(protocol_run):
    config, index, _, _ = protocol_run
    page = index.read_text()
    for text in ("How this run was made", "medsam reproduce -o", "Accuracy with tight boxes",
                 "Accuracy with perturbed boxes", "within each task", "Fine-tuning: gain or loss",
                 "Tumour burden", "Human raters: drive", "not run: weights absent", "external"):
        assert text in page, text
    for method in (PUBLISHED, FINETUNED, UNET):
        assert f"<td>{PUBLISHED}</td><td>{method}</td>" in page or method == PUBLISHED
    for image in ("report/tight/boxplot_dsc.png", "report/perturbed/boxplot_nsd.png",
                  "raters/drive/experts.png"):
        assert (config.out / image).is_file() and f'src="{image}"' in page
    assert "No U-Net for CT" in page
    volumes = (config.out / "volumes" / "volume_agreement.csv").read_text().splitlines()
    assert len(volumes) == 1 + 2 and all(line.startswith("recist,") for line in volumes[1:])
    assert "`" not in page


@pytest.mark.slow
def test_a_second_run_resumes_instead_of_redoing(protocol_run):
    config, _, lines, again = protocol_run
    assert any(line.startswith("finetune:") for line in lines)
    assert lines[0] == ("estimate: about 0.3 min of training budgets (fine-tune 0.1 min + 2 U-Nets (RGB, grey) "
                        "x 0.1 min), plus prediction and scoring")
    # only the report is written again (its seconds are the machine's, not a verdict)
    assert [line.split(":")[0] for line in again] == ["report", "report"]


def test_cli_refuses_bad_input_in_one_line(cli_process, tmp_path):
    result = cli_process("reproduce", "-o", str(tmp_path / "out"), "--description", str(tmp_path / "none.json"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "none.json: file not found" in result.stderr
    (tmp_path / "d.json").write_text(json.dumps({"datasets": []}))
    result = cli_process("reproduce", "-o", str(tmp_path / "out"), "--description", str(tmp_path / "d.json"),
                 "--steps", "prepare,fly")
    assert result.returncode == 2 and "fly" in result.stderr
    result = cli_process("reproduce", "-o", str(tmp_path / "out"), "--description", str(tmp_path / "d.json"),
                 "--nsd-diagonal", "150")
    assert result.returncode == 2 and "diagonal must be in (0, 100] %" in result.stderr
    assert not (tmp_path / "out").exists()
