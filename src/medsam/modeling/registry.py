"""The model registry: one :class:`ModelKind` per model the package builds, loads,
trains and segments with.

``MODEL_REGISTRY`` maps a variant name (as checkpoints record it and as the command
line takes it) to its kind:

``vit_b``, ``vit_l``, ``vit_h``
    SAM's ViT encoders at 1024x1024 (MedSAM is ``vit_b``); MedSAM's preprocessing.
``lite``
    LiteMedSAM: TinyViT encoder at 256x256, with SAM's prompt encoder and mask decoder;
    LiteMedSAM's preprocessing.
``unet``
    the box-cropped U-Net specialist (:class:`~medsam.modeling.unet.BoxUNet`), at
    LiteMedSAM's 256-pixel input frame; its architecture is recorded in its checkpoints.

Code elsewhere asks the kind instead of testing a model's class: which transform a
model needs by default, whether it is promptable (SAM's image encoder, prompt encoder
and mask decoder) or takes images and boxes directly, which state-dict keys its weights
have (the segmenter that segments with it is :data:`medsam.segmentation.SEGMENTERS`'s,
by the same name).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Optional, Tuple, Union

from ..errors import InputError
from .build import MODEL_CONFIGS, build_sam
from .sam import Sam
from .unet import UNET_VARIANT, BoxUNet, UNetConfig, build_unet

#: a model of a registered kind
Model = Union[Sam, BoxUNet]

#: state-dict prefixes of SAM's three parts
SAM_COMPONENTS = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


@dataclass(frozen=True)
class ModelKind:
    """One kind of model.

    Attributes:
        name: the variant name.
        build: the recorded architecture (a checkpoint's ``metadata[name]``; None when
            there is none) -> a randomly initialised model in eval mode.
        transform: the default preprocessing (a key of ``medsam.transforms.TRANSFORMS``),
            used when the weights name none.
        promptable: SAM's parts (``image_encoder``, ``prompt_encoder``,
            ``mask_decoder``; an image embedding can be computed once and frozen); else
            the model is called as ``model(images (B, 3, S, S), boxes (B, 4))`` -> logits.
        key_prefixes: the prefixes of its state-dict keys.
        architecture: the model -> what its checkpoints record of its architecture (None:
            nothing to record; the variant name says it all).
    """

    name: str
    build: Callable[[Any], Model]
    transform: str
    promptable: bool
    key_prefixes: Tuple[str, ...]
    architecture: Optional[Callable[[Model], dict]] = None

    def build_model(self, record: Any = None) -> Model:
        """A randomly initialised model of this kind, in eval mode, whose ``info.transform``
        is the kind's default transform."""
        model = self.build(record)
        model.info = replace(model.info, transform=self.transform, transform_source="the variant's default")
        return model.eval()


def _sam_kind(variant: str, transform: str) -> ModelKind:
    return ModelKind(variant, lambda _record: build_sam(MODEL_CONFIGS[variant]), transform,
                     promptable=True, key_prefixes=SAM_COMPONENTS)


def _unet_architecture(model: Model) -> dict:
    assert isinstance(model, BoxUNet)
    return model.config.record()


MODEL_REGISTRY: Dict[str, ModelKind] = {
    "vit_b": _sam_kind("vit_b", "medsam"),
    "vit_l": _sam_kind("vit_l", "medsam"),
    "vit_h": _sam_kind("vit_h", "medsam"),
    "lite": _sam_kind("lite", "litemedsam"),
    UNET_VARIANT: ModelKind(UNET_VARIANT, lambda record: build_unet(UNetConfig.from_record(record)), "litemedsam",
                            promptable=False, key_prefixes=("net.",),
                            architecture=_unet_architecture),
}


def model_kind(variant: str) -> ModelKind:
    """The registry entry of ``variant``; :class:`~medsam.errors.InputError` for an
    unknown name."""
    kind = MODEL_REGISTRY.get(variant)
    if kind is None:
        raise InputError(f"unknown model variant {variant!r}; choose one of {', '.join(MODEL_REGISTRY)}")
    return kind


def build_model(variant: str, record: Any = None) -> Model:
    """Build a randomly initialised model of ``variant`` (a ``MODEL_REGISTRY`` key) in
    eval mode; ``record``: the architecture a checkpoint records (the U-Net's). Raises
    :class:`~medsam.errors.InputError` for an unknown name. Build under
    ``with torch.device("meta"):`` to get the structure without allocating weights."""
    return model_kind(variant).build_model(record)
