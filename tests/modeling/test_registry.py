"""The registry of model kinds: each entry builds its model, names its default transform
and its segmenter, and the loader and the segmenter factory go by the entry alone."""

import pytest
import torch

from medsam.errors import InputError
from medsam.modeling import MODEL_REGISTRY, model_kind
from medsam.modeling.unet import BoxUNet, UNetConfig


@pytest.mark.parametrize("name", list(MODEL_REGISTRY))
def test_every_kind_builds_its_variant_with_its_default_transform(name):
    import medsam.segmentation
    from medsam.transforms import TRANSFORMS

    kind = MODEL_REGISTRY[name]
    with torch.device("meta"):
        model = kind.build_model()
    assert model.variant == name and not model.training
    assert model.info.transform == kind.transform and model.info.transform_source == "the variant's default"
    assert TRANSFORMS[kind.transform].image_size == model.image_size
    # every kind has its segmenter, in the plain dict the layer check sees
    assert medsam.segmentation.SEGMENTERS[name] in (medsam.segmentation.MedSAMSegmenter,
                                                   medsam.segmentation.BoxUNetSegmenter)
    assert model.info.variant == name and not model.info.interactive and model.info.weights_file is None
    assert all(key.startswith(kind.key_prefixes) for key in model.state_dict())


def test_the_unet_is_built_from_its_recorded_architecture():
    kind = model_kind("unet")
    config = UNetConfig(crop_size=64, filters=(8, 16, 32), margin=0.2)
    model = kind.build_model(config.record())
    assert isinstance(model, BoxUNet) and model.config == config
    assert kind.architecture is not None and kind.architecture(model) == config.record()
    assert not kind.promptable and all(k.promptable for n, k in MODEL_REGISTRY.items() if n != "unet")


def test_an_unknown_variant_names_the_known_ones():
    with pytest.raises(InputError, match="unknown model variant 'vit_x'; choose one of vit_b, vit_l, vit_h, lite, "
                                         "unet"):
        model_kind("vit_x")


def test_make_segmenter_goes_by_the_registry(tmp_path):
    """A saved U-Net and a saved LiteMedSAM load with their kind's transform and get
    their kind's segmenter; the U-Net's needs no transform of its own."""
    from medsam.checkpoint import with_metadata
    from medsam.loading import load_model
    from medsam.segmentation import BoxUNetSegmenter, MedSAMSegmenter, make_segmenter

    config = UNetConfig(crop_size=64, filters=(8, 16, 32))
    unet = model_kind("unet").build_model(config.record())
    path = tmp_path / "unet.pth"
    torch.save(with_metadata(unet.state_dict(), {"variant": "unet", "unet": config.record()}), path)
    loaded = load_model(path, device="cpu")
    assert (loaded.info.transform, loaded.info.transform_source) == ("litemedsam", "the variant's default")
    segmenter = make_segmenter(loaded, precision="exact")
    assert isinstance(segmenter, BoxUNetSegmenter) and segmenter.transform.name == "litemedsam"

    lite = tmp_path / "lite.pth"
    torch.save(model_kind("lite").build_model().state_dict(), lite)
    assert isinstance(make_segmenter(load_model(lite, device="cpu"), precision="exact"), MedSAMSegmenter)
