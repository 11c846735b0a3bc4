"""SAM-architecture configurations and builders (registered in
:data:`medsam.modeling.registry.MODEL_REGISTRY`). Each builder returns a randomly
initialised :class:`~medsam.modeling.sam.Sam` in eval mode. Variants:

``vit_b``, ``vit_l``, ``vit_h``
    SAM's ViT encoders at 1024x1024 (MedSAM is ``vit_b``).
``lite``
    LiteMedSAM: TinyViT encoder at 256x256, with SAM's prompt encoder and
    mask decoder (configuration of the public LiteMedSAM inference script).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Tuple, Union

from torch import nn

from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .tiny_vit import TinyViT
from .transformer import TwoWayTransformer


@dataclass(frozen=True)
class ViTConfig:
    """A SAM ViT image encoder."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: Tuple[int, ...]
    patch_size: int = 16
    window_size: int = 14
    mlp_ratio: float = 4.0

    def embedding_size(self, image_size: int) -> int:
        return image_size // self.patch_size


@dataclass(frozen=True)
class TinyViTConfig:
    """A TinyViT image encoder (defaults: LiteMedSAM)."""

    embed_dims: Tuple[int, ...] = (64, 128, 160, 320)
    depths: Tuple[int, ...] = (2, 2, 6, 2)
    num_heads: Tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: Tuple[int, ...] = (7, 7, 14, 7)
    merge_strides: Tuple[int, ...] = (2, 2, 1)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    stem_kernel: int = 1
    stem_stride: int = 1

    def embedding_size(self, image_size: int) -> int:
        return image_size // (self.stem_stride ** 2 * math.prod(self.merge_strides))


@dataclass(frozen=True)
class DecoderConfig:
    """SAM's mask decoder (identical in every variant)."""

    transformer_depth: int = 2
    mlp_dim: int = 2048
    num_heads: int = 8
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class ModelConfig:
    """A whole model: encoder, input size, prompt encoder and decoder widths."""

    variant: str
    image_size: int
    encoder: Union[ViTConfig, TinyViTConfig]
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @property
    def embedding_size(self) -> int:
        """Side of the (square) image embedding grid (64 for every variant)."""
        return self.encoder.embedding_size(self.image_size)


MODEL_CONFIGS: Dict[str, ModelConfig] = {
    "vit_b": ModelConfig("vit_b", 1024, ViTConfig(768, 12, 12, (2, 5, 8, 11))),
    "vit_l": ModelConfig("vit_l", 1024, ViTConfig(1024, 24, 16, (5, 11, 17, 23))),
    "vit_h": ModelConfig("vit_h", 1024, ViTConfig(1280, 32, 16, (7, 15, 23, 31))),
    "lite": ModelConfig("lite", 256, TinyViTConfig()),
}


def build_image_encoder(config: ModelConfig) -> nn.Module:
    """The image encoder of ``config``: (B, 3, S, S) -> (B, 256, 64, 64)."""
    enc = config.encoder
    if isinstance(enc, ViTConfig):
        return ImageEncoderViT(
            img_size=config.image_size,
            patch_size=enc.patch_size,
            embed_dim=enc.embed_dim,
            depth=enc.depth,
            num_heads=enc.num_heads,
            mlp_ratio=enc.mlp_ratio,
            out_chans=config.prompt_embed_dim,
            qkv_bias=True,
            norm_layer=nn.LayerNorm,
            norm_eps=1e-6,
            use_rel_pos=True,
            window_size=enc.window_size,
            global_attn_indexes=enc.global_attn_indexes,
        )
    return TinyViT(
        img_size=config.image_size,
        embed_dims=enc.embed_dims,
        depths=enc.depths,
        num_heads=enc.num_heads,
        window_sizes=enc.window_sizes,
        merge_strides=enc.merge_strides,
        mlp_ratio=enc.mlp_ratio,
        mbconv_expand_ratio=enc.mbconv_expand_ratio,
        local_conv_size=enc.local_conv_size,
        stem_kernel=enc.stem_kernel,
        stem_stride=enc.stem_stride,
        out_chans=config.prompt_embed_dim,
    )


def build_sam(config: ModelConfig) -> Sam:
    """Build a randomly initialised model from ``config``, in eval mode."""
    dim = config.prompt_embed_dim
    grid = config.embedding_size
    dec = config.decoder
    model = Sam(
        image_encoder=build_image_encoder(config),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.image_size, config.image_size),
            mask_in_chans=config.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            transformer_dim=dim,
            transformer=TwoWayTransformer(depth=dec.transformer_depth, embedding_dim=dim,
                                          num_heads=dec.num_heads, mlp_dim=dec.mlp_dim),
            num_multimask_outputs=dec.num_multimask_outputs,
            iou_head_depth=dec.iou_head_depth,
            iou_head_hidden_dim=dec.iou_head_hidden_dim,
        ),
        image_size=config.image_size,
        variant=config.variant,
    )
    return model.eval()
