"""Builders: parameter counts and state-dict layouts against segment-anything 1.0
(built on the meta device: no weights are allocated)."""

import pytest
import torch

from medsam.errors import InputError
from medsam.modeling import MODEL_CONFIGS, MODEL_REGISTRY, Sam, build_model


def _count(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _layout(module):
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


@pytest.fixture(scope="module")
def meta_models(reference):
    _, build_sam = reference
    builders = {"vit_b": build_sam.build_sam_vit_b, "vit_l": build_sam.build_sam_vit_l,
                "vit_h": build_sam.build_sam_vit_h}
    with torch.device("meta"):
        return {name: (build_model(name), builder()) for name, builder in builders.items()}


def test_vit_b_counts_are_the_papers(meta_models):
    ours, _ = meta_models["vit_b"]
    # MedSAM paper: image encoder 89,670,912 and mask decoder 4,058,340 trainable parameters
    assert _count(ours.image_encoder) == 89_670_912
    assert _count(ours.mask_decoder) == 4_058_340


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h"])
def test_counts_match_reference(meta_models, variant):
    ours, ref = meta_models[variant]
    for part in ("image_encoder", "prompt_encoder", "mask_decoder"):
        assert _count(getattr(ours, part)) == _count(getattr(ref, part)), part
    assert _count(ours.prompt_encoder) == 6_220
    assert _count(ours) == _count(ref)


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h"])
def test_state_dict_layout_matches_reference(meta_models, variant):
    """Same keys in the same order, same shapes: official checkpoints load strictly."""
    ours, ref = meta_models[variant]
    assert list(_layout(ours)) == list(_layout(ref))
    assert _layout(ours) == _layout(ref)


def test_registry_and_attributes():
    assert set(MODEL_REGISTRY) == {"vit_b", "vit_l", "vit_h", "lite", "unet"}
    with torch.device("meta"):
        for name in MODEL_CONFIGS:
            model = build_model(name)
            assert isinstance(model, Sam)
            assert model.variant == name
            assert model.image_size == MODEL_CONFIGS[name].image_size
            assert model.image_size == (256 if name == "lite" else 1024)
            assert MODEL_CONFIGS[name].embedding_size == 64
            assert model.prompt_encoder.input_image_size == (model.image_size,) * 2
            assert not model.training  # built in eval mode, like the reference builder


def test_configs_are_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        MODEL_CONFIGS["vit_b"].image_size = 512


def test_unknown_variant():
    with pytest.raises(InputError, match="unknown model variant 'vit_x'.*vit_b"):
        build_model("vit_x")


def test_top_level_api_is_wired():
    import medsam

    with torch.device("meta"):
        assert medsam.build_model("vit_b").variant == "vit_b"
    from medsam.loading import load_model

    assert medsam.load_model is load_model
