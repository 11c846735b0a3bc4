"""TinyViT image encoder, as used by MobileSAM and LiteMedSAM.

Four stages: a convolutional stage of MBConv blocks, then three stages of
TinyViT blocks (windowed attention with a learned bias per relative offset, a
depthwise "local" convolution, an MLP). Between stages a patch-merging block
changes the width and (stride 2) halves the resolution. A neck maps the last
stage to the 256-channel image embedding.

LiteMedSAM runs it at 256x256 input: its stem is two 1x1 convolutions at stride
1 (MobileSAM's is two 3x3 convolutions at stride 2, for 1024 input), the first
two merges halve the resolution and the last keeps it, so the embedding is
(B, 256, 64, 64). Between stages the features are kept channels-last,
(B, H, W, C).

Module and parameter names follow the public ``tiny_vit_sam.py`` so that
``lite_medsam.pth`` loads unchanged.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence, cast

import torch
from torch import nn
from torch.nn import functional as F

from .common import LayerNorm2d, by_token_chunks


class Conv2d_BN(nn.Sequential):  # noqa: N801 (name fixed by the checkpoint layout)
    """Convolution without bias (``c``) followed by batch norm (``bn``); (B, C, H, W).

    In eval mode the batch norm is folded into the convolution's weights on the
    fly (one convolution, same result up to rounding).
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, bn_weight_init: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding,
                                       groups=groups, bias=False))
        bn = nn.BatchNorm2d(out_chans)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.zeros_(bn.bias)
        self.add_module("bn", bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn = cast(nn.Conv2d, self.c), cast(nn.BatchNorm2d, self.bn)
        if self.training:
            return bn(conv(x))
        running_var, running_mean = cast(torch.Tensor, bn.running_var), cast(torch.Tensor, bn.running_mean)
        scale = bn.weight * torch.rsqrt(running_var + bn.eps)
        weight = conv.weight * scale[:, None, None, None]
        bias = bn.bias - running_mean * scale
        return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class PatchEmbed(nn.Module):
    """Stem: (B, 3, H, W) -> (B, embed_dim, H/s^2, W/s^2) by two Conv2d_BN with
    a GELU between (``kernel_size`` 1 and ``stride`` 1 for LiteMedSAM)."""

    def __init__(self, in_chans: int, embed_dim: int, kernel_size: int = 1,
                 stride: int = 1) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.seq = nn.Sequential(
            Conv2d_BN(in_chans, embed_dim // 2, kernel_size, stride, pad),
            nn.GELU(),
            Conv2d_BN(embed_dim // 2, embed_dim, kernel_size, stride, pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


#: MBConv works on stripes of this many rows (plus one row of context above and below):
#: at LiteMedSAM's 256 x 256 first stage the expanded (B, 256, H, W) activations of a whole
#: image are 64 MB, far more than a CPU cache; a stripe's stay in it (1.6x faster, same numbers;
#: the token-wise MLPs are chunked likewise, see ``common.by_token_chunks``)
MBCONV_STRIPE_ROWS = 16


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, residual,
    GELU. (B, C, H, W) -> (B, C, H, W); in eval mode computed in stripes of
    :data:`MBCONV_STRIPE_ROWS` rows (only the 3x3 convolution looks beyond a row, by one
    row, so each stripe is computed with one extra row of input either side, and the
    rows computed from zero padding at a stripe's edge are dropped)."""

    def __init__(self, chans: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(chans * expand_ratio)
        self.conv1 = Conv2d_BN(chans, hidden)
        self.act1 = nn.GELU()
        self.conv2 = Conv2d_BN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2d_BN(hidden, chans, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, rows = x.shape[2], MBCONV_STRIPE_ROWS
        if self.training or height <= 2 * rows:  # training: batch norm needs the whole image
            return self._block(x)
        stripes = []
        for top in range(0, height, rows):
            low, high = max(0, top - 1), min(height, top + rows + 1)
            stripe = self._block(x[:, :, low:high])
            stripes.append(stripe[:, :, top - low:top - low + min(rows, height - top)])
        return torch.cat(stripes, dim=2)

    def _block(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x))
        y = self.act2(self.conv2(y))
        return self.act3(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """Change width and resolution between stages: 1x1 conv, 3x3 depthwise conv
    at ``stride``, 1x1 conv (GELU between). (B, C, H, W) -> (B, H/s, W/s, C')."""

    def __init__(self, dim: int, out_dim: int, stride: int = 2) -> None:
        super().__init__()
        self.act = nn.GELU()
        self.conv1 = Conv2d_BN(dim, out_dim)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        return self.conv3(x).permute(0, 2, 3, 1)


class ConvLayer(nn.Module):
    """First stage: MBConv blocks on (B, C, H, W), then an optional merge."""

    def __init__(self, dim: int, depth: int, expand_ratio: float,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class Mlp(nn.Module):
    """LayerNorm, fc1, GELU, fc2 on (..., C), by token chunks (:func:`by_token_chunks`)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return by_token_chunks(self._mlp, x)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class Attention(nn.Module):
    """Multi-head self-attention inside one ``window`` x ``window`` window, with
    LayerNorm on the input and a learned bias per head and per absolute offset
    (|dy|, |dx|) between query and key.

    ``qkv`` holds, per head, [query, key, value] of ``head_dim`` each (the
    checkpoint's layout). (B', window^2, C) -> (B', window^2, C).
    """

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.window = window
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))

    def bias(self) -> torch.Tensor:
        """Attention bias (heads, window^2, window^2)."""
        return self.attention_biases[:, offset_index(self.window, self.attention_biases.device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, tokens, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=3)
        # a mask expanded to the full (B', heads, N, N) shape lets SDPA take its
        # fused path (several times faster on CPU than broadcasting one)
        bias = self.bias().to(q.dtype).expand(batch, -1, -1, -1)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, -1))


def offset_index(window: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(window^2, window^2) index of the offset between two cells of a window,
    ``|dy| * window + |dx|``, cells in row-major order. This is the order in
    which TinyViT enumerates offsets (first seen while scanning pairs)."""
    return _offset_index(window, str(torch.device(device)))


@functools.lru_cache(maxsize=16)
def _offset_index(window: int, device: str) -> torch.Tensor:
    # A normal tensor even when first asked for under torch.inference_mode():
    # a cached inference tensor could not be used later by autograd (training).
    with torch.inference_mode(False):
        cells = torch.arange(window * window, device=device)
        ys, xs = cells // window, cells % window
        return (ys[:, None] - ys[None, :]).abs() * window + (xs[:, None] - xs[None, :]).abs()


class TinyViTBlock(nn.Module):
    """Windowed attention (zero padding to whole windows), residual; 3x3
    depthwise local convolution; MLP, residual. (B, H, W, C) -> (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: float = 4.0,
                 local_conv_size: int = 3) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = Conv2d_BN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, chans = x.shape
        w = self.window_size
        pad_h, pad_w = -height % w, -width % w
        windows = F.pad(x, (0, 0, 0, pad_w, 0, pad_h)) if pad_h or pad_w else x
        ny, nx = (height + pad_h) // w, (width + pad_w) // w
        windows = windows.view(batch, ny, w, nx, w, chans).transpose(2, 3).reshape(-1, w * w, chans)
        out = self.attn(windows).view(batch, ny, nx, w, w, chans).transpose(2, 3)
        out = out.reshape(batch, ny * w, nx * w, chans)[:, :height, :width]
        x = x + out
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """A stage of TinyViT blocks on (B, H, W, C), then an optional merge."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int,
                 mlp_ratio: float = 4.0, local_conv_size: int = 3,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window_size, mlp_ratio, local_conv_size)
            for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x.permute(0, 3, 1, 2))
        return x


class TinyViT(nn.Module):
    """TinyViT encoder for SAM-style models.

    Args:
        img_size: side of the square input (256 for LiteMedSAM).
        embed_dims, depths, num_heads, window_sizes: per stage (stage 0 is
            convolutional: its ``num_heads`` / ``window_sizes`` are unused).
        merge_strides: stride of the merge after stages 0..n-2.
        stem_kernel, stem_stride: of the two stem convolutions.
        out_chans: channels of the output embedding (256).

    ``forward(x)``: (B, in_chans, img_size, img_size) -> (B, out_chans, h, w)
    with h = img_size / (stem_stride^2 * product(merge_strides)) (64 for LiteMedSAM).
    """

    def __init__(self, img_size: int = 256, in_chans: int = 3,
                 embed_dims: Sequence[int] = (64, 128, 160, 320),
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (2, 4, 5, 10),
                 window_sizes: Sequence[int] = (7, 7, 14, 7),
                 merge_strides: Sequence[int] = (2, 2, 1),
                 mlp_ratio: float = 4.0, mbconv_expand_ratio: float = 4.0,
                 local_conv_size: int = 3, stem_kernel: int = 1, stem_stride: int = 1,
                 out_chans: int = 256) -> None:
        super().__init__()
        stages = len(depths)
        if stages < 2 or not (len(embed_dims) == len(num_heads) == len(window_sizes) == stages
                and len(merge_strides) == stages - 1):
            raise ValueError("TinyViT needs at least 2 stages; embed_dims, depths, num_heads and "
                             "window_sizes need one entry per stage, merge_strides one fewer")
        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0], stem_kernel, stem_stride)
        self.layers = nn.ModuleList()
        for i in range(stages):
            merge: Optional[nn.Module] = None
            if i < stages - 1:
                merge = PatchMerging(embed_dims[i], embed_dims[i + 1], merge_strides[i])
            layer: nn.Module
            if i == 0:
                layer = ConvLayer(embed_dims[0], depths[0], mbconv_expand_ratio, merge)
            else:
                layer = BasicLayer(embed_dims[i], depths[i], num_heads[i], window_sizes[i],
                                   mlp_ratio, local_conv_size, merge)
            self.layers.append(layer)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last convolutions are markedly faster on CPU; the attention
        # stages are channels-last anyway
        x = self.patch_embed(x.contiguous(memory_format=torch.channels_last))
        for layer in self.layers:
            x = layer(x)
        return self.neck(x.permute(0, 3, 1, 2))
