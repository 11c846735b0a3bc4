"""Checkpoint loading: the forms a checkpoint comes in, variant inference, and
one clear CheckpointError naming the file for every kind of bad file."""

import argparse
import os

import pytest
import torch

import medsam
from medsam.checkpoint import load_state_dict
from medsam.errors import CheckpointError, InputError, MedSAMError
from medsam.loading import infer_variant, load_model
from medsam.modeling import build_model

from reference_sam import load_reference


@pytest.fixture(scope="module")
def lite_state():
    """A randomly initialised LiteMedSAM state dict (about 10 M parameters)."""
    torch.manual_seed(0)
    model = build_model("lite")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model.state_dict()


@pytest.fixture(scope="module")
def lite_file(lite_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "lite_medsam.pth"
    torch.save(lite_state, path)
    return path


def _assert_same_weights(model, state):
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_plain_state_dict(lite_file, lite_state):
    model = load_model(lite_file)
    assert model.variant == "lite" and model.image_size == 256
    assert not model.training
    assert all(p.requires_grad and p.dtype == torch.float32 for p in model.parameters())
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    _assert_same_weights(model, lite_state)
    # a str path and the top-level API work the same
    _assert_same_weights(medsam.load_model(str(lite_file), variant="lite"), lite_state)


@pytest.mark.parametrize("form", ["training", "state_dict", "ddp", "ddp+training",
                                  "compiled+ddp", "pixel_buffers", "half"])
def test_checkpoint_forms(form, lite_state, tmp_path):
    state = dict(lite_state)
    if form == "training":
        saved = {"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 7,
                 "loss": 0.25}
    elif form == "state_dict":
        saved = {"state_dict": state, "epoch": 7}
    elif form == "ddp":
        saved = {f"module.{k}": v for k, v in state.items()}
    elif form == "ddp+training":
        saved = {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 1}
    elif form == "compiled+ddp":
        saved = {f"module._orig_mod.{k}": v for k, v in state.items()}
    elif form == "pixel_buffers":  # some SAM versions save the normalisation constants
        saved = {**state, "pixel_mean": torch.zeros(3, 1, 1), "pixel_std": torch.ones(3, 1, 1)}
    else:  # weights saved in float16 load as float32
        saved = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / f"{form}.pth"
    torch.save(saved, path)
    assert list(load_state_dict(path)) == list(state)
    model = load_model(path)
    assert model.variant == "lite"
    if form == "half":
        for key, value in model.state_dict().items():
            assert value.dtype == state[key].dtype
            torch.testing.assert_close(value, state[key].half().to(state[key].dtype), rtol=0,
                                       atol=0)
    else:
        _assert_same_weights(model, state)


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h", "lite"])
def test_infer_variant_from_keys_and_shapes(variant):
    with torch.device("meta"):
        assert infer_variant(build_model(variant).state_dict()) == variant
        if variant != "lite":  # the reference builder's layout (that of the official files)
            _, build_sam = load_reference()
            ref = getattr(build_sam, f"build_sam_{variant}")()
            assert infer_variant(ref.state_dict()) == variant


def test_infer_variant_unknown_vit():
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(512, 3, 16, 16),
             **{f"image_encoder.blocks.{i}.norm1.weight": torch.zeros(512) for i in range(8)}}
    with pytest.raises(CheckpointError, match="width 512 with 8 blocks"):
        infer_variant(state, source="x.pth")
    with pytest.raises(CheckpointError, match="pass the variant"):
        infer_variant({"mask_decoder.iou_token.weight": torch.zeros(1, 256)})


# --- every bad file gives one CheckpointError naming it -----------------------------


def _error(path, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        load_model(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert info.value.__suppress_context__ or info.value.__cause__ is None
    return message


def test_missing_file(tmp_path):
    assert "not found" in _error(tmp_path / "nope.pth")
    # a path-like string that does not exist is a missing file, not a weights name
    assert "not found" in _error(str(tmp_path / "sub" / "model"))


def test_folder(tmp_path):
    assert "folder" in _error(tmp_path)


def test_empty_and_random_bytes(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "empty" in _error(empty)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(os.urandom(4096))
    noise.write_bytes(b"\x00" + noise.read_bytes()[1:])  # never a zip or pickle header
    assert "not a PyTorch checkpoint" in _error(noise)
    text = tmp_path / "page.pth"  # what a failed download often leaves behind
    text.write_text("<html><body>Quota exceeded</body></html>")
    assert "not a PyTorch checkpoint" in _error(text)


def test_corrupt_pickle(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x80\x02" + bytes(range(200, 256)) * 10)
    assert "truncated or damaged" in _error(path)


@pytest.mark.parametrize("fraction", [0.5, 0.999])
def test_truncated(lite_file, tmp_path, fraction):
    data = lite_file.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert "truncated or damaged" in _error(path)


def test_legacy_format_truncated(lite_state, tmp_path):
    legacy = tmp_path / "legacy.pth"
    torch.save(dict(list(lite_state.items())[:5]), legacy, _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    path = tmp_path / "legacy_truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or damaged" in _error(path)


def test_wrong_keys(lite_state, tmp_path):
    state = dict(lite_state)
    state["image_encoder.neck.0.weights"] = state.pop("image_encoder.neck.0.weight")
    del state["mask_decoder.iou_token.weight"]
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    message = _error(path)
    assert "'lite'" in message
    assert "2 missing keys: image_encoder.neck.0.weight, mask_decoder.iou_token.weight" in message
    assert "1 unexpected keys: image_encoder.neck.0.weights" in message


def test_wrong_shapes(lite_state, tmp_path):
    state = dict(lite_state)
    state["image_encoder.neck.0.weight"] = torch.zeros(256, 160, 1, 1)
    path = tmp_path / "reshaped.pth"
    torch.save(state, path)
    message = _error(path)
    assert ("1 shape mismatches: image_encoder.neck.0.weight (256, 160, 1, 1) in the file, "
            "(256, 320, 1, 1) in the model") in message
    assert "missing" not in message


def test_lite_weights_into_vit_b(lite_file):
    message = _error(lite_file, variant="vit_b")
    assert "variant 'vit_b' (as requested)" in message
    assert "missing keys: image_encoder.pos_embed" in message
    assert "unexpected keys: image_encoder.patch_embed.seq.0.c.weight" in message
    assert "more)" in message  # long lists are cut short
    assert "look like variant 'lite'" in message


def test_no_model_weights(tmp_path):
    path = tmp_path / "optimizer_only.pth"
    torch.save({"optimizer": {"state": {}}, "epoch": 3}, path)
    message = _error(path)
    assert "no model weights" in message and "optimizer, epoch" in message
    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), other)
    assert "no model weights" in _error(other)


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    assert "holds a Tensor, not a state dict" in _error(path)


def test_python_objects_are_not_loaded(lite_state, tmp_path):
    path = tmp_path / "with_args.pth"
    torch.save({"model": dict(lite_state), "args": argparse.Namespace(lr=1e-4)}, path)
    message = _error(path)
    assert "argparse.Namespace" in message and "weights_only" in message


def test_bad_variant_and_device(lite_file):
    with pytest.raises(InputError, match="unknown model variant 'vit_q'"):
        load_model(lite_file, variant="vit_q")
    with pytest.raises(InputError, match="device"):
        load_model(lite_file, device="not-a-device")


def test_unknown_name_goes_to_the_weights_registry():
    """A string that is neither a file nor path-like is a named-weights lookup;
    an unknown name is a one-line MedSAMError naming it."""
    with pytest.raises(MedSAMError) as info:
        load_model("surely_not_a_weights_name")
    assert "surely_not_a_weights_name" in str(info.value)


def test_registered_names_carry_their_preprocessing(tmp_path):
    """Named weights carry the transform of their registry entry (SAM's for Meta's
    files); a file is not judged by its name: one called like Meta's SAM file, with
    other contents, gets the variant's default."""
    from medsam.loading import _preprocessing
    from medsam.modeling import model_kind

    nowhere = tmp_path / "not_read.pth"
    vit_b = model_kind("vit_b")
    assert _preprocessing("sam_vit_b", nowhere, vit_b, {}, None) == (
        "sam", "registered weights sam_vit_b")
    assert _preprocessing("medsam_vit_b", nowhere, vit_b, {}, None)[0] == "medsam"
    impostor = tmp_path / "sam_vit_b_01ec64.pth"
    impostor.write_bytes(b"PK\x03\x04 not Meta's file")
    assert _preprocessing(str(impostor), impostor, vit_b, {}, None) == (
        "medsam", "the variant's default")


def _register(monkeypatch, path, name="test_sam_file", variant="vit_b", transform="sam"):
    """Register ``path``'s bytes as published weights, as WEIGHTS holds Meta's files."""
    import hashlib

    from medsam.weights import WEIGHTS, WeightsEntry

    entry = WeightsEntry(name=name, filename=f"{name}.pth", sources=(), variant=variant,
                         transform=transform,
                         checksum="sha256:" + hashlib.sha256(path.read_bytes()).hexdigest(),
                         size_bytes=path.stat().st_size, description="test", homepage="")
    monkeypatch.setitem(WEIGHTS, name, entry)
    return entry


def test_identify_file_by_size_and_checksum(tmp_path, monkeypatch):
    from medsam.weights import identify_file

    published = tmp_path / "published.bin"
    published.write_bytes(b"\x80 published bytes")
    entry = _register(monkeypatch, published)
    renamed = tmp_path / "renamed.pth"
    renamed.write_bytes(published.read_bytes())
    assert identify_file(renamed, "vit_b") == entry
    assert identify_file(renamed, "vit_l") is None                 # another variant
    assert identify_file(renamed, "vit_b", skip_transform="sam") is None
    other = tmp_path / entry.filename                              # the name, other bytes
    other.write_bytes(b"\x80 published byteZ")
    assert identify_file(other, "vit_b") is None


@pytest.mark.slow
def test_renamed_sam_file_keeps_sams_preprocessing(tmp_path, monkeypatch):
    """A registered SAM file renamed by its user still gets SAM's transform (by content)."""
    from medsam.predictor import MedSAMPredictor

    path = tmp_path / "my_copy.pth"
    torch.save(build_model("vit_b").state_dict(), path)
    _register(monkeypatch, path)
    model = load_model(path)
    assert (model.info.transform, model.info.transform_source) == (
        "sam", "the published test_sam_file file")
    assert MedSAMPredictor(model).transform.name == "sam"


def test_our_checkpoints_record_their_preprocessing(tmp_path, lite_state):
    """Metadata saved inside our checkpoints (keys still SAM's layout) chooses the
    variant and transform; an explicit transform overrides it, and must fit the model."""
    from medsam.checkpoint import with_metadata

    path = tmp_path / "trained.pth"
    torch.save(with_metadata(lite_state, {"variant": "lite", "transform": "litemedsam",
                                          "image_size": 256, "trained_on": ["jsrt"]}), path)
    assert list(torch.load(path, weights_only=True)) == list(lite_state)
    model = load_model(path)
    assert (model.info.transform, model.info.transform_source) == (
        "litemedsam", "recorded in the checkpoint")
    assert model.info.metadata["trained_on"] == ["jsrt"]
    assert load_model(path, transform="litemedsam").info.transform_source == "as requested"
    with pytest.raises(InputError, match="makes 1024-pixel inputs but the model takes 256"):
        load_model(path, transform="sam")
    with pytest.raises(InputError, match="unknown transform 'nope'"):
        load_model(path, transform="nope")


def test_lite_checkpoint_loads_with_default_preprocessing(tmp_path):
    import medsam
    from medsam.predictor import MedSAMPredictor

    path = tmp_path / "trained.pth"
    torch.save(medsam.build_model("lite").state_dict(), path)
    model = medsam.load_model(path)
    assert (model.info.transform, model.info.transform_source) == ("litemedsam", "the variant's default")
    assert MedSAMPredictor(model).transform.name == "litemedsam"


def test_auto_device_is_accepted_everywhere(tmp_path):
    """`auto` means the best available device for load_model as for the predictor."""
    import medsam
    from medsam.devices import default_device

    path = tmp_path / "lite.pth"
    torch.save(medsam.build_model("lite").state_dict(), path)
    model = medsam.load_model(path, device="auto")
    assert next(model.parameters()).device.type == default_device().type


def test_odd_records_in_a_checkpoint_are_ignored(tmp_path, lite_state):
    """A record that is not ours (a list where a name belongs) does not break loading."""
    from medsam.checkpoint import with_metadata

    path = tmp_path / "odd.pth"
    torch.save(with_metadata(lite_state, {"variant": ["lite"], "transform": 3}), path)
    model = load_model(path)
    assert model.variant == "lite" and model.info.transform == "litemedsam"


def test_loading_leaves_the_random_state_alone(lite_file):
    """Building the model to load into does not draw from the caller's random numbers."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    load_model(lite_file)
    assert torch.equal(torch.rand(3), expected)
