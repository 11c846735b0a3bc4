"""The interactive model shipped with the package (``lite_interactive``): its trained parts
load over the verified LiteMedSAM file, say they are interactive, and a damaged, missing or
incomplete file gets one line naming it."""

from __future__ import annotations

import shutil

import pytest
import torch

from medsam import load_model, weights
from medsam.checkpoint import read_checkpoint, save_torch_file, with_metadata
from medsam.errors import CheckpointError


def test_the_shipped_file_is_in_the_package_with_its_checksum(lite_medsam_checkpoint):
    entry = weights.get_entry("lite_interactive")
    path = weights.get_weights_path("lite_interactive")
    assert path == weights.bundled_path(entry) and path.parent.name == "data"
    assert path.stat().st_size == entry.size_bytes < 10 * 2 ** 20
    assert entry.checksum == "sha256:" + weights.file_digest(path)
    assert weights.verify("lite_interactive")
    state, record = read_checkpoint(path)
    assert {k.split(".")[0] for k in state} == {"prompt_encoder", "mask_decoder"}
    assert record["base"] == "lite_medsam" and record["interactive"] is True
    assert "sts_ct" in record["trained_on"] and "totalseg_ct" not in record["trained_on"]


def test_it_loads_as_litemedsam_with_trained_parts(lite_interactive_model, lite_medsam_model):
    model, base = lite_interactive_model, lite_medsam_model
    assert model.info.interactive and not base.info.interactive
    assert model.variant == "lite" and model.info.transform == "litemedsam"
    trained, original = model.state_dict(), base.state_dict()
    assert all(torch.equal(trained[k], original[k]) for k in original if k.startswith("image_encoder."))
    assert any(not torch.equal(trained[k], original[k]) for k in original if k.startswith("mask_decoder."))


def test_a_damaged_shipped_file_gets_one_line_with_the_fix(monkeypatch, tmp_path):
    entry = weights.get_entry("lite_interactive")
    copy = tmp_path / "medsam" / "weights" / "data" / "lite_interactive.pth"
    copy.parent.mkdir(parents=True)
    shutil.copy(weights.bundled_path(entry), copy)
    with open(copy, "r+b") as f:                 # one flipped byte in the middle
        f.seek(copy.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(weights.cache, "bundled_path", lambda _entry: copy)
    with pytest.raises(CheckpointError) as error:
        load_model("lite_interactive")
    message = str(error.value)
    assert "\n" not in message and str(copy) in message and "damaged" in message and "reinstall" in message
    copy.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        weights.get_weights_path("lite_interactive")


def test_parts_files_that_claim_more_than_they_hold_are_refused(tmp_path, lite_medsam_checkpoint, cli,
                                                                shared_data):
    path = weights.bundled_path(weights.get_entry("lite_interactive"))
    state, record = read_checkpoint(path)
    decoder_only = {k: v for k, v in state.items() if k.startswith("mask_decoder.")}
    bad = tmp_path / "claims_two_parts.pth"
    save_torch_file(with_metadata(decoder_only, record), bad)
    with pytest.raises(CheckpointError, match="claims trained parts"):
        load_model(bad)
    missing_key = dict(state)
    missing_key.pop(next(k for k in state if k.startswith("mask_decoder.")))
    short = tmp_path / "short.pth"
    save_torch_file(with_metadata(missing_key, record), short)
    with pytest.raises(CheckpointError, match="does not fit the base weights"):
        load_model(short)
    image = sorted((shared_data / "isic_ham10000_skin" / "images").iterdir())[0]
    done = cli("segment", str(image), "--box", "100,100,300,300", "--checkpoint", str(bad),
               "-o", str(tmp_path / "out.png"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert str(bad) in done.stderr and not (tmp_path / "out.png").exists()


def test_pack_keeps_the_trained_parts_and_refuses_a_trained_encoder(tmp_path, lite_medsam_checkpoint,
                                                                    lite_interactive_model, cli):
    from medsam.training.checkpointing import save_weights

    run = tmp_path / "best.pth"
    save_weights(lite_interactive_model, run, {"variant": "lite", "interactive": True, "transform": "litemedsam"})
    done = cli("weights", "pack", str(run), "-o", str(tmp_path / "parts.pth"))
    assert done.returncode == 0, done.stderr
    again = load_model(tmp_path / "parts.pth")
    assert again.info.interactive
    for k, v in lite_interactive_model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    changed = load_model(lite_medsam_checkpoint)
    with torch.no_grad():
        next(changed.image_encoder.parameters()).add_(1.0)
    save_weights(changed, tmp_path / "encoder.pth", {"variant": "lite"})
    done = cli("weights", "pack", str(tmp_path / "encoder.pth"), "-o", str(tmp_path / "x.pth"))
    assert done.returncode == 2 and "image_encoder" in done.stderr and not (tmp_path / "x.pth").exists()
