"""Two-way transformer of the mask decoder.

Prompt tokens (queries) and image tokens (keys) attend to each other: in each
layer the tokens attend to themselves, then to the image, then pass an MLP, and
finally the image attends back to the tokens. A last token-to-image attention
follows the layers.
"""

from __future__ import annotations

from typing import Tuple, Type

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .common import MLPBlock


class TwoWayTransformer(nn.Module):
    """Args:
        depth: number of :class:`TwoWayAttentionBlock` layers (2 for SAM).
        embedding_dim: token width (256).
        num_heads: attention heads (8).
        mlp_dim: hidden width of the token MLP (2048).
        attention_downsample_rate: cross-attention works at ``embedding_dim / rate``.
    """

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 activation: Type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.embedding_dim = embedding_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, activation,
                                 attention_downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads,
                                                   downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: Tensor, image_pe: Tensor,
                point_embedding: Tensor) -> Tuple[Tensor, Tensor]:
        """Args:
            image_embedding: (B, C, H, W).
            image_pe: positional encoding, broadcastable to (B, C, H, W).
            point_embedding: (B, N, C) prompt and output tokens.

        Returns:
            tokens (B, N, C) and image tokens (B, H*W, C).
        """
        keys = image_embedding.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        attn_out = self.final_attn_token_to_image(q=queries + point_embedding, k=keys + key_pe,
                                                  v=keys)
        queries = self.norm_final_attn(queries + attn_out)
        return queries, keys


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image attention, token MLP,
    image-to-token attention; each followed by a residual add and LayerNorm.
    The first layer uses no positional encoding in its self-attention."""

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int = 2048,
                 activation: Type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads,
                                                   downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, activation)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads,
                                                   downsample_rate=attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor,
                key_pe: Tensor) -> Tuple[Tensor, Tensor]:
        """queries (B, N, C), keys (B, HW, C) and their positional encodings."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)

        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))

        queries = self.norm3(queries + self.mlp(queries))

        q = queries + query_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width to
    ``embedding_dim / downsample_rate``. q (B, Nq, C), k and v (B, Nk, C) ->
    (B, Nq, C).

    Where one side is a handful of prompt tokens and the other the 4096 image
    tokens, projecting the image tokens is most of the work. The projections are
    linear, so they are moved onto the short side instead (same result up to
    rounding, 2.3x fewer operations): with few queries, each head's query is taken
    back through the key projection and meets the raw keys, and the attention-weighted
    raw values go through the value projection afterwards (the key bias adds the same
    score to every key and drops out of the softmax); with few keys, the keys are
    taken through the query projection and the values through the output projection.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide the internal width "
                             f"({self.internal_dim})")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def _short(self, tokens: int) -> bool:
        """Whether ``tokens`` is few enough to move the projections onto that side."""
        return self.num_heads * tokens < self.internal_dim

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        few_queries, few_keys = self._short(q.shape[1]), self._short(k.shape[1])
        if few_queries and not few_keys:
            return self._few_queries(q, k, v)
        if few_keys and not few_queries:
            return self._few_keys(q, k, v)
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        v = self._split_heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)
        batch, heads, tokens, width = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, heads * width))

    def _head_weights(self, linear: nn.Linear) -> Tensor:
        """A projection's weight as (heads, head width, C) for ``q/k/v_proj``."""
        return linear.weight.view(self.num_heads, -1, linear.weight.shape[1])

    def _few_queries(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        batch, n_q, _ = q.shape
        heads = self.num_heads
        scale = (self.internal_dim // heads) ** -0.5
        query = self.q_proj(q).view(batch, n_q, heads, -1)
        # (B, H, Nq, C): each head's query seen through the key projection
        query = torch.einsum("bnhd,hdc->bhnc", query, self._head_weights(self.k_proj)) * scale
        scores = query.reshape(batch, heads * n_q, -1) @ k.transpose(1, 2)
        mixed = scores.softmax(dim=-1) @ v                                # (B, H*Nq, C)
        out = torch.einsum("bhnc,hdc->bnhd", mixed.view(batch, heads, n_q, -1),
                           self._head_weights(self.v_proj))
        out = out.reshape(batch, n_q, self.internal_dim) + self.v_proj.bias
        return self.out_proj(out)

    def _few_keys(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        batch, n_k, _ = k.shape
        heads = self.num_heads
        scale = (self.internal_dim // heads) ** -0.5
        key = self.k_proj(k).view(batch, n_k, heads, -1)
        value = self.v_proj(v).view(batch, n_k, heads, -1)
        # the keys seen through the query projection: (B, C, H*Nk), and the query bias's share
        key_q = torch.einsum("bkhd,hdc->bchk", key, self._head_weights(self.q_proj)) * scale
        bias = torch.einsum("bkhd,hd->bhk", key, self.q_proj.bias.view(heads, -1)) * scale
        # scores as (B, H*Nk, Nq): the softmax over each head's few keys is then over a
        # strided axis of long rows, many times faster than over a last axis of length Nk
        scores = torch.baddbmm(bias.reshape(batch, heads * n_k, 1),
                               key_q.reshape(batch, -1, heads * n_k).transpose(1, 2), q.transpose(1, 2))
        weights = scores.view(batch, heads, n_k, -1).softmax(dim=2)
        # the values seen through the output projection: (B, H*Nk, C)
        out_w = self.out_proj.weight.view(-1, heads, self.internal_dim // heads)
        value_o = torch.einsum("bkhd,chd->bhkc", value, out_w).reshape(batch, heads * n_k, -1)
        return torch.baddbmm(self.out_proj.bias, weights.view(batch, heads * n_k, -1).transpose(1, 2),
                             value_o)
