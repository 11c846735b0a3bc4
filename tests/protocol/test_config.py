"""The protocol's settings and image categories."""

from pathlib import Path

import pytest

from medsam.errors import InputError
from medsam.protocol import STEPS, ProtocolConfig, category


@pytest.mark.parametrize("modality, expected", [("ct", "CT"), ("mr", "MR"), ("xray", "grey"),
                                                ("us", "grey"), ("mammo", "grey"), ("endoscopy", "RGB"),
                                                ("dermoscopy", "RGB"), ("pathology", "RGB"),
                                                ("fundus", "RGB"), ("rgb", "RGB")])
def test_categories_are_the_papers(modality, expected):
    assert category(modality) == expected


@pytest.mark.parametrize("bad, match", [(dict(steps=("prepare", "dance")), "dance"),
                                        (dict(settings=("loose",)), "loose"),
                                        (dict(finetune_minutes=0), "budgets"),
                                        (dict(max_cases=0), "max_cases")])
def test_bad_settings_are_refused(bad, match):
    with pytest.raises(InputError, match=match):
        ProtocolConfig(Path("d.json"), Path("out"), **bad)


def test_steps_run_in_the_papers_order():
    assert STEPS == ("prepare", "finetune", "unet", "predict", "volumes", "raters", "report")
