"""Mask decoder: image embedding + prompt embeddings -> mask logits and IoU.

Learned output tokens (one IoU token, 1 + ``num_multimask_outputs`` mask
tokens) are prepended to the prompt tokens and run through the two-way
transformer. The image tokens are upscaled 4x by two transposed convolutions;
each mask token, through its own MLP, gives the weights of a dot product with
the upscaled embedding. Token 0 is the single-mask output, tokens 1..3 the
multimask outputs.
"""

from __future__ import annotations

from typing import Tuple, Type, cast

import torch
from torch import nn
from torch.nn import functional as F

from .common import MLP, LayerNorm2d


class MaskDecoder(nn.Module):
    """Args:
        transformer_dim: token width (256).
        transformer: the :class:`~medsam.modeling.transformer.TwoWayTransformer`.
        num_multimask_outputs: masks returned when ``multimask_output`` (3).
        iou_head_depth, iou_head_hidden_dim: the IoU-prediction MLP (3, 256).
    """

    def __init__(self, *, transformer_dim: int, transformer: nn.Module,
                 num_multimask_outputs: int = 3, activation: Type[nn.Module] = nn.GELU,
                 iou_head_depth: int = 3, iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens,
                                       iou_head_depth)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                multimask_output: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predict masks.

        Args:
            image_embeddings: (1, C, H, W) shared by all prompts, or (B, C, H, W)
                one per prompt (as in MedSAM's batched training).
            image_pe: (1, C, H, W) from ``prompt_encoder.get_dense_pe()``.
            sparse_prompt_embeddings: (B, K, C).
            dense_prompt_embeddings: (B, C, H, W).
            multimask_output: return the 3 multimask outputs instead of the single mask.

        Returns:
            low-resolution mask logits (B, 1 or 3, 4H, 4W) and predicted IoU (B, 1 or 3).
        """
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe,
                                             sparse_prompt_embeddings, dense_prompt_embeddings)
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou_pred[:, chosen]

    def predict_masks(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,
                      sparse_prompt_embeddings: torch.Tensor,
                      dense_prompt_embeddings: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """All ``num_mask_tokens`` masks (B, T, 4H, 4W) and IoU predictions (B, T)."""
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat([output_tokens[None].expand(batch, -1, -1), sparse_prompt_embeddings],
                           dim=1)
        src = _per_prompt(image_embeddings, batch, "image_embeddings") + dense_prompt_embeddings
        pos_src = _per_prompt(image_pe, batch, "image_pe")
        _, _, height, width = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )
        return self._upscaled_masks(src, height, width, hyper_in), self.iou_prediction_head(iou_token_out)

    def _upscaled_masks(self, src: torch.Tensor, height: int, width: int,
                        hyper_in: torch.Tensor) -> torch.Tensor:
        """``output_upscaling`` of the image tokens ``src`` (B, H*W, C), then each mask
        token's dot product with the upscaled embedding: (B, T, 4H, 4W).

        A 2x2 transposed convolution at stride 2 maps each pixel to its own 2x2 block,
        so it is computed as one matrix product on the (pixels, channels) tokens, the
        layout the transformer gives; normalisation and activations act on the channel
        axis there too, and nothing is copied into (B, C, H, W). Same numbers as
        running ``output_upscaling`` on (B, C, H, W), to rounding."""
        layers = self.output_upscaling
        conv1, conv2 = cast(nn.ConvTranspose2d, layers[0]), cast(nn.ConvTranspose2d, layers[3])
        norm, act1, act2 = cast(LayerNorm2d, layers[1]), layers[2], layers[4]
        batch = src.shape[0]
        x = _block_linear(src, conv1).view(batch, height, width, 2, 2, -1)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, 4 * height * width, -1)
        x = act1(F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps))
        x = act2(_block_linear(x, conv2))        # (B, 2H*2W*4, C'), pixels (I, J, ki, kj)
        masks = (x.view(batch, -1, x.shape[-1] // 4) @ hyper_in.transpose(1, 2))
        masks = masks.view(batch, 2 * height, 2 * width, 2, 2, -1).permute(0, 5, 1, 3, 2, 4)
        return masks.reshape(batch, -1, 4 * height, 4 * width)


def _block_linear(x: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
    """A 2x2, stride-2 transposed convolution on tokens (B, N, C_in) -> (B, N, 4 * C_out),
    the last axis ordered (ki, kj, C_out)."""
    weight = conv.weight.permute(2, 3, 1, 0).reshape(-1, conv.weight.shape[0])
    bias = conv.bias.repeat(4) if conv.bias is not None else None
    return F.linear(x, weight, bias)


def _per_prompt(x: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    """Broadcast a (1, ...) tensor to ``batch`` prompts; (batch, ...) passes through."""
    if x.shape[0] == batch:
        return x
    if x.shape[0] == 1:
        return x.expand(batch, *x.shape[1:])
    raise ValueError(f"{name} has batch size {x.shape[0]}; expected 1 or {batch} "
                     f"(the number of prompts)")
