"""The protocol's settings and image categories."""

from pathlib import Path

import pytest

from medsam.errors import InputError
from medsam.protocol import STEPS, ProtocolConfig, category
from medsam.protocol.config import training_estimate


@pytest.mark.parametrize("modality, expected", [("ct", "CT"), ("mr", "MR"), ("xray", "grey"),
                                                ("us", "grey"), ("mammo", "grey"), ("endoscopy", "RGB"),
                                                ("dermoscopy", "RGB"), ("pathology", "RGB"),
                                                ("fundus", "RGB"), ("rgb", "RGB")])
def test_categories_are_the_papers(modality, expected):
    assert category(modality) == expected


@pytest.mark.parametrize("bad, match", [(dict(steps=("prepare", "dance")), "dance"),
                                        (dict(settings=("loose",)), "loose"),
                                        (dict(finetune_minutes=0), "budgets"),
                                        (dict(max_cases=0), "max_cases"),
                                        (dict(nsd_diagonal=0.0), "diagonal")])
def test_bad_settings_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        ProtocolConfig(Path("d.json"), Path("out"), **bad)


def test_steps_run_in_the_papers_order():
    assert STEPS == ("prepare", "finetune", "unet", "predict", "volumes", "raters", "report")


def test_sam_runs_only_when_its_weights_are_at_hand(tmp_path, monkeypatch, lite_medsam_checkpoint):
    from medsam.datasets.description import parse_dataset
    from medsam.protocol.config import PUBLISHED, SAM
    from medsam.protocol.methods import Methods

    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path / "empty_cache"))
    spec = parse_dataset({"name": "x", "modality": "us", "images": "*.png"}, tmp_path, "test")
    config = ProtocolConfig(Path("d.json"), tmp_path / "out", published=str(lite_medsam_checkpoint),
                            device="cpu")
    assert not Methods(config).sam_available()
    assert list(Methods(config).for_dataset(spec)) == [PUBLISHED]   # nothing trained yet
    # any checkpoint file stands for SAM's here: the same code path runs it
    with_sam = ProtocolConfig(Path("d.json"), tmp_path / "out", published=str(lite_medsam_checkpoint),
                              sam_weights=str(lite_medsam_checkpoint), device="cpu")
    assert list(Methods(with_sam).for_dataset(spec)) == [PUBLISHED, SAM]


def test_every_step_has_an_entry_and_only_the_page_is_always_rebuilt():
    from medsam.protocol.config import STEPS
    from medsam.protocol.steps import STEP_TABLE

    assert tuple(STEP_TABLE) == STEPS
    assert [name for name, step in STEP_TABLE.items() if step.always] == ["report"]


def test_the_estimate_counts_the_budgets_of_the_selected_steps(description):
    """Two image categories train a U-Net (the external sets train nothing)."""
    config = ProtocolConfig(Path("d.json"), Path("out"), finetune_minutes=30, unet_minutes=5)
    assert training_estimate(config, description) == ("about 40 min of training budgets (fine-tune 30 min + "
                                                       "2 U-Nets (RGB, grey) x 5 min), plus prediction and scoring")
    only_unet = ProtocolConfig(Path("d.json"), Path("out"), steps=("prepare", "unet"), unet_minutes=5)
    assert training_estimate(only_unet, description).startswith("about 10 min of training budgets (2 U-Nets")
    assert training_estimate(ProtocolConfig(Path("d.json"), Path("out"), steps=("report",)),
                             description) == "no training in the selected steps"
