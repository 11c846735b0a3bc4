"""SAM-architecture models written for medsam: the ViT and TinyViT image
encoders, the prompt encoder, the two-way transformer mask decoder, the
``Sam`` container, the box-cropped U-Net, and the registry of model kinds
(``MODEL_REGISTRY``, ``model_kind``, ``build_model``)."""

from .build import MODEL_CONFIGS, ModelConfig, build_sam
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .registry import MODEL_REGISTRY, ModelKind, build_model, model_kind
from .sam import Sam, decode_prompts
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer

__all__ = [
    "MODEL_CONFIGS", "MODEL_REGISTRY", "ModelConfig", "ModelKind", "build_model", "build_sam", "model_kind",
    "ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam", "TinyViT", "TwoWayTransformer", "decode_prompts",
]
