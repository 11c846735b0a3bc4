"""Prompt encoder: boxes, points and mask inputs to sparse and dense embeddings.

Coordinates are in pixels of the model's input frame (the resized, padded
``input_image_size`` image; 1024 for the ViTs, 256 for LiteMedSAM), x = column,
y = row. A box is XYXY: (x0, y0, x1, y1).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Type, cast

import torch
from torch import nn

from .common import LayerNorm2d

Points = Tuple[torch.Tensor, torch.Tensor]


class PromptEncoder(nn.Module):
    """Encodes prompts for the mask decoder.

    Args:
        embed_dim: embedding width (256).
        image_embedding_size: (H, W) of the image embedding (64, 64).
        input_image_size: (H, W) of the encoder's input frame.
        mask_in_chans: hidden channels of the mask-input downscaler (16).

    Point labels: 1 foreground, 0 background, -1 padding ("not a point").
    Box corners get their own two learned embeddings.
    """

    def __init__(self, embed_dim: int, image_embedding_size: Tuple[int, int],
                 input_image_size: Tuple[int, int], mask_in_chans: int,
                 activation: Type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = (int(input_image_size[0]), int(input_image_size[1]))
        self.image_embedding_size = (int(image_embedding_size[0]), int(image_embedding_size[1]))
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: background point, 1: foreground point, 2: box top-left, 3: box bottom-right
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of every embedding cell: (1, embed_dim, H, W)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def forward(self, points: Optional[Points], boxes: Optional[torch.Tensor],
                masks: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embed prompts.

        Args:
            points: ``(coords (B, N, 2) xy, labels (B, N))`` or None.
            boxes: (B, 4) or (B, 1, 4) XYXY, or None.
            masks: (B, 1, 4*He, 4*We) low-resolution mask logits, or None.

        Returns:
            sparse (B, K, embed_dim): K = N (+1 padding point when there is no
            box) + 2 per box; dense (B, embed_dim, He, We).
        """
        batch = _batch_size(points, boxes, masks)
        parts = []
        if points is not None:
            coords, labels = points
            parts.append(self._embed_points(coords, labels, pad=boxes is None))
        if boxes is not None:
            parts.append(self._embed_boxes(boxes))
        weight = self.no_mask_embed.weight
        if parts:
            sparse = torch.cat(parts, dim=1)
        else:
            sparse = weight.new_empty((batch, 0, self.embed_dim))
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = weight.reshape(1, -1, 1, 1).expand(batch, -1, *self.image_embedding_size)
        return sparse, dense

    def _embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 2) pixel coords and (B, N) labels -> (B, N [+1], embed_dim)."""
        coords = coords + 0.5  # pixel centres
        if pad:
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], dim=1)
        embedding = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        labels = labels[..., None]
        embedding = torch.where(labels == -1, self.not_a_point_embed.weight, embedding)
        embedding = torch.where(labels == 0, embedding + self._point_weight(0), embedding)
        embedding = torch.where(labels == 1, embedding + self._point_weight(1), embedding)
        return embedding

    def _point_weight(self, index: int) -> torch.Tensor:
        """The (1, embed_dim) learned embedding of point kind ``index`` (see ``__init__``)."""
        return cast(nn.Embedding, self.point_embeddings[index]).weight

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) or (B, 1, 4) XYXY boxes -> (B, 2, embed_dim) corner embeddings."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        embedding = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_embed = torch.cat([self._point_weight(2), self._point_weight(3)])
        return embedding + corner_embed


def _batch_size(points: Optional[Points], boxes: Optional[torch.Tensor],
                masks: Optional[torch.Tensor]) -> int:
    if points is not None:
        return points[0].shape[0]
    if boxes is not None:
        return boxes.shape[0]
    if masks is not None:
        return masks.shape[0]
    return 1


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of 2D positions with a fixed random Gaussian matrix.

    A position (x, y) in [0, 1]^2 maps to
    ``[sin(2 pi p G), cos(2 pi p G)]`` with ``p = 2 (x, y) - 1`` and ``G`` (2, F);
    output width ``2 F``.
    """

    def __init__(self, num_pos_feats: int = 64, scale: Optional[float] = None) -> None:
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        self.positional_encoding_gaussian_matrix: torch.Tensor
        self.register_buffer("positional_encoding_gaussian_matrix",
                             scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: Tuple[int, int]) -> torch.Tensor:
        """Encoding of the centres of an (H, W) grid: (2F, H, W)."""
        height, width = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        grid = torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)],
                           dim=-1)
        return self._pe_encoding(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor,
                            image_size: Tuple[int, int]) -> torch.Tensor:
        """Encode (B, N, 2) xy pixel coordinates in an (H, W) frame: (B, N, 2F)."""
        height, width = image_size
        normalised = torch.stack([coords[..., 0] / width, coords[..., 1] / height], dim=-1)
        return self._pe_encoding(normalised.to(torch.float32))
