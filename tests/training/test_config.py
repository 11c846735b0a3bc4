import json

import pytest

from medsam.errors import InputError
from medsam.training.config import TrainConfig, load_config, save_config


def test_file_then_overrides_then_options(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"data": "p", "out": "r", "epochs": 3, "lr": 0.001}))
    c = load_config(path, ["lr=2e-4", "betas=0.8,0.99", "datasets=a,b", "freeze_bn=true",
                           "effective_batch=null"], epochs=5)
    assert (c.epochs, c.lr, c.betas, c.datasets, c.freeze_bn) == (5, 2e-4, (0.8, 0.99),
                                                                  ("a", "b"), True)
    assert c.weight_decay == 0.01 and c.betas != TrainConfig().betas
    saved = save_config(c, tmp_path / "run" / "config.json")
    assert load_config(saved) == c


def test_yaml_config(tmp_path):
    pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    path = tmp_path / "c.yaml"
    path.write_text("data: p\nout: r\nvariant: vit_b\neffective_batch: 160\n")
    c = load_config(path)
    assert (c.variant, c.effective_batch, c.batch_size) == ("vit_b", 160, 2)


@pytest.mark.parametrize("overrides, message", [
    (["colour=red"], "unknown training settings"),
    (["epochs=two"], "not a valid int"),
    (["epochs=0"], "at least 1"),
    (["variant=vit_q"], "variant 'vit_q' unknown"),
    (["precision=fp8"], "precision"),
    (["lr"], "key=value"),
    (["batch_size=8", "effective_batch=4"], "below batch_size"),
])
def test_bad_settings(overrides, message):
    with pytest.raises(InputError, match=message):
        load_config(None, ["data=p", "out=r", *overrides])


def test_data_and_out_are_required():
    with pytest.raises(InputError, match="prepared data folder"):
        load_config(None, ["out=r"])
