"""SAM-architecture models written for medsam: the ViT and TinyViT image
encoders, the prompt encoder, the two-way transformer mask decoder, the
``Sam`` container and the builders (``build_model``, ``MODEL_REGISTRY``)."""

from .build import MODEL_CONFIGS, MODEL_REGISTRY, ModelConfig, build_model, build_sam
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam, decode_prompts
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer

__all__ = [
    "MODEL_CONFIGS", "MODEL_REGISTRY", "ModelConfig", "build_model", "build_sam",
    "ImageEncoderViT", "MaskDecoder", "PromptEncoder", "Sam", "TinyViT", "TwoWayTransformer", "decode_prompts",
]
