"""SAM's ViT image encoder (ViT-B / ViT-L / ViT-H).

A plain vision transformer after ViTDet: 16x16 patches, absolute position
embedding, blocks with windowed attention (14x14 windows) except a few blocks
with global attention, decomposed relative position bias in every block, and a
convolutional neck that maps the ``(B, 64, 64, D)`` tokens to a
``(B, 256, 64, 64)`` image embedding for a 1024x1024 input.

Tokens are kept channels-last, ``(B, H, W, C)``, between blocks.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Type

import torch
from torch import nn
from torch.nn import functional as F

from .common import LayerNorm2d, MLPBlock

#: most values of one band of the attention bias (see ``Attention._rel_pos_attention``):
#: 2**25 floats = 128 MiB, ten query rows of a global ViT-B block
BIAS_BAND_ELEMENTS = 2**25


class ImageEncoderViT(nn.Module):
    """ViT image encoder.

    Args:
        img_size: side of the square input image (1024 for SAM).
        patch_size: side of a square patch (16).
        in_chans: input channels (3).
        embed_dim, depth, num_heads: transformer width, number of blocks, heads.
        mlp_ratio: MLP hidden width / ``embed_dim``.
        out_chans: channels of the output embedding (256).
        window_size: side of the attention windows (14); 0 means global everywhere.
        global_attn_indexes: blocks that use global attention.
        use_rel_pos: add decomposed relative position bias to the attention.

    ``forward(x)``: ``x`` (B, in_chans, img_size, img_size) float, already
    normalised and padded -> (B, out_chans, img_size/patch, img_size/patch).
    """

    def __init__(
        self,
        img_size: int = 1024,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        out_chans: int = 256,
        qkv_bias: bool = True,
        norm_layer: Type[nn.Module] = nn.LayerNorm,
        act_layer: Type[nn.Module] = nn.GELU,
        use_abs_pos: bool = True,
        use_rel_pos: bool = True,
        window_size: int = 14,
        global_attn_indexes: Sequence[int] = (),
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed: Optional[nn.Parameter] = None
        if use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(
                dim=embed_dim,
                num_heads=num_heads,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                norm_layer=norm_layer,
                act_layer=act_layer,
                use_rel_pos=use_rel_pos,
                window_size=0 if i in global_attn_indexes else window_size,
                input_size=(grid, grid),
                norm_eps=norm_eps,
            )
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens: (B, C, H, W) -> (B, H/p, W/p, embed_dim)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Block(nn.Module):
    """Pre-norm transformer block; attention over windows of ``window_size``
    (0: over the whole ``input_size`` grid). Input/output (B, H, W, C)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_layer: Type[nn.Module] = nn.LayerNorm,
        act_layer: Type[nn.Module] = nn.GELU,
        use_rel_pos: bool = True,
        window_size: int = 0,
        input_size: Tuple[int, int] = (64, 64),
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim, eps=norm_eps)
        attn_size = input_size if window_size == 0 else (window_size, window_size)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, use_rel_pos=use_rel_pos,
                              input_size=attn_size)
        self.norm2 = norm_layer(dim, eps=norm_eps)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), act=act_layer)
        self.window_size = window_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            height, width = x.shape[1], x.shape[2]
            windows, padded_hw = window_partition(x, self.window_size)
            x = window_unpartition(self.attn(windows), self.window_size, padded_hw, (height, width))
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) grid of tokens, with
    decomposed relative position bias (MViTv2) when ``use_rel_pos``.

    ``rel_pos_h`` / ``rel_pos_w`` hold one embedding per relative offset
    (``2 * size - 1`` rows of ``head_dim``). Computed with
    ``scaled_dot_product_attention``; the bias is passed as an additive mask.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True,
                 use_rel_pos: bool = True, input_size: Tuple[int, int] = (14, 14)) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, _ = x.shape
        tokens = height * width
        # (3, B, heads, N, head_dim)
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.use_rel_pos:
            x = self._rel_pos_attention(q, k, v, height, width)
        else:
            x = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        x = x.transpose(1, 2).reshape(batch, height, width, -1)
        return self.proj(x)

    def _rel_pos_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, height: int,
                           width: int) -> torch.Tensor:
        """Attention with the relative-position bias, in bands of query rows small enough
        that a band's bias, (B, heads, rows * W, H * W), holds at most
        :data:`BIAS_BAND_ELEMENTS` values (a query's result does not depend on the other
        queries: the same numbers as one call, without the 805 MB bias of a global ViT-B
        block)."""
        batch, heads, tokens, _ = q.shape
        rows = max(1, BIAS_BAND_ELEMENTS // (batch * heads * width * tokens))
        bands = []
        for top in range(0, height, rows):
            band = q[:, :, top * width:min(height, top + rows) * width]
            bias = decomposed_rel_pos_bias(band, self.rel_pos_h, self.rel_pos_w, (height, width),
                                           (height, width), first_row=top)
            bands.append(F.scaled_dot_product_attention(band, k, v, attn_mask=bias, scale=self.scale))
        return bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)


def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Split (B, H, W, C) into (B * nWindows, window, window, C) windows, padding
    the bottom and right with zeros to multiples of ``window_size``.

    Returns the windows and the padded size (Hp, Wp).
    """
    batch, height, width, channels = x.shape
    pad_h = -height % window_size
    pad_w = -width % window_size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.view(batch, hp // window_size, window_size, wp // window_size, window_size, channels)
    windows = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size, window_size, channels)
    return windows, (hp, wp)


def window_unpartition(windows: torch.Tensor, window_size: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nWindows, w, w, C) -> (B, H, W, C)."""
    hp, wp = padded_hw
    height, width = hw
    batch = windows.shape[0] // ((hp // window_size) * (wp // window_size))
    x = windows.view(batch, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    if hp > height or wp > width:
        x = x[:, :height, :width, :].contiguous()
    return x


def relative_position_table(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Embeddings for every (query, key) offset along one axis.

    ``rel_pos`` (L, C) is linearly resampled to ``2 * max(q_size, k_size) - 1``
    rows when its length differs. Returns (q_size, k_size, C).
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        rel_pos = F.interpolate(rel_pos.T[None], size=length, mode="linear")[0].T
    q_scale = max(k_size / q_size, 1.0)
    k_scale = max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    offsets = (q_coords - k_coords) + (k_size - 1) * k_scale
    return rel_pos[offsets.long()]


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            q_size: Tuple[int, int], k_size: Tuple[int, int],
                            first_row: int = 0) -> torch.Tensor:
    """Additive attention bias from decomposed relative positions (MViTv2).

    ``q`` (B, heads, rows * q_w, C) unscaled queries of the query grid's rows
    ``first_row`` .. ``first_row + rows - 1`` (all ``q_h`` rows by default). The bias for
    query (i, j) and key (k, l) is ``q . Rh[i, k] + q . Rw[j, l]``. Returns
    (B, heads, rows * q_w, k_h * k_w), in ``q``'s dtype.
    """
    q_h, q_w = q_size
    k_h, k_w = k_size
    batch, heads, tokens, dim = q.shape
    rows = tokens // q_w
    table_h = relative_position_table(q_h, k_h, rel_pos_h)[first_row:first_row + rows].to(q.dtype)
    table_w = relative_position_table(q_w, k_w, rel_pos_w).to(q.dtype)
    grid_q = q.reshape(batch, heads, rows, q_w, dim)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, table_h)
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, table_w)
    bias = rel_h[..., :, None] + rel_w[..., None, :]
    return bias.reshape(batch, heads, rows * q_w, k_h * k_w)
