"""Small building blocks shared by the encoders and the mask decoder.

Parameter names follow Meta's ``segment_anything`` so that the official SAM,
MedSAM and LiteMedSAM checkpoints load unchanged.
"""

from __future__ import annotations

from typing import Callable, Type

import torch
from torch import nn
from torch.nn import functional as F

#: token-wise layers work on this many tokens at a time: a whole image's hidden
#: activations (4096 tokens x 3072 for ViT-B, 16384 x 512 for TinyViT) overflow a CPU cache
CHUNK_TOKENS = 2048


def by_token_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """``fn(x)`` for a ``fn`` that treats each token (last axis) on its own, computed
    ``chunk`` tokens at a time: the same numbers, with activations that stay in the cache."""
    tokens = x.reshape(-1, x.shape[-1])
    if tokens.shape[0] <= 2 * chunk:
        return fn(x)
    parts = [fn(tokens[i:i + chunk]) for i in range(0, tokens.shape[0], chunk)]
    return torch.cat(parts).view(*x.shape[:-1], -1)


class MLPBlock(nn.Module):
    """Two linear layers with an activation between them: ``lin2(act(lin1(x)))``,
    by token chunks (:func:`by_token_chunks`).

    Input and output ``(..., embedding_dim)``; hidden width ``mlp_dim``.
    """

    def __init__(self, embedding_dim: int, mlp_dim: int, act: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return by_token_chunks(self._mlp, x)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (none after the last).

    Used for the mask decoder's hypernetworks and its IoU head. Input
    ``(..., input_dim)``, output ``(..., output_dim)``.
    """

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
                 sigmoid_output: bool = False) -> None:
        super().__init__()
        widths_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        widths_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(widths_in, widths_out))
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of a ``(B, C, H, W)`` tensor.

    Each pixel's ``C`` values are normalised to zero mean and unit variance
    (biased variance, ``eps`` inside the square root), then scaled and shifted
    per channel.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps
        self.normalized_shape = (int(num_channels),)   # a constant (an exported graph keeps it static)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused layer_norm over the last axis of the (B, H, W, C) view; on a
        # channels-last tensor (the mask decoder's upscaling) that view needs no copy
        out = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return out.permute(0, 3, 1, 2)
