"""The ``Sam`` container: image encoder, prompt encoder and mask decoder.

It holds no pixel normalisation and no resizing: the predictor prepares the
input (resize the longest side to ``image_size``, normalise, pad bottom/right to
``image_size`` x ``image_size``) and maps prompts into the input frame.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import nn

from .info import DescribedModel, ModelInfo
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class Sam(DescribedModel, nn.Module):
    """A SAM-architecture model (SAM / MedSAM ViTs, LiteMedSAM).

    Attributes:
        image_encoder: (B, 3, S, S) float32 -> (B, 256, 64, 64).
        prompt_encoder: see :class:`~medsam.modeling.prompt_encoder.PromptEncoder`.
        mask_decoder: see :class:`~medsam.modeling.mask_decoder.MaskDecoder`.
        info: what the model is (``variant``, ``image_size``) and, once loaded, what its
            weights are (preprocessing, trained for interaction, the file):
            :class:`~medsam.modeling.info.ModelInfo`.
    """

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder,
                 mask_decoder: MaskDecoder, *, image_size: int, variant: str) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.info = ModelInfo(str(variant), int(image_size))

    @property
    def device(self) -> torch.device:
        return self.prompt_encoder.no_mask_embed.weight.device

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, image_size={self.image_size}"

    def forward(self, images: torch.Tensor, boxes: Optional[torch.Tensor] = None,
                points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                masks: Optional[torch.Tensor] = None,
                multimask_output: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """Segment one prompt per image (the batched form used for training).

        Args:
            images: (B, 3, S, S) preprocessed images.
            boxes, points, masks, multimask_output: as in :func:`decode_prompts`.

        Returns:
            low-resolution logits (B, 1|3, 256, 256) and IoU predictions (B, 1|3).
        """
        return decode_prompts(self, self.image_encoder(images), boxes=boxes, points=points,
                              masks=masks, multimask_output=multimask_output)


def decode_prompts(model: Any, embeddings: torch.Tensor,
                   boxes: Optional[torch.Tensor] = None,
                   points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                   masks: Optional[torch.Tensor] = None,
                   multimask_output: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> masks on precomputed image embeddings: the one prompt-encoder ->
    mask-decoder call, used by :meth:`Sam.forward`, the predictor, training and tuning.

    ``model`` is any SAM-architecture module with ``prompt_encoder`` and
    ``mask_decoder`` (ours, or Meta's reference ``Sam``).

    Args:
        embeddings: (1, 256, 64, 64) shared by all B prompts, or (B, 256, 64, 64)
            one per prompt.
        boxes: (B, 4) XYXY boxes in input-frame pixels, or None.
        points: (coords (B, N, 2) xy input-frame pixels, labels (B, N)), or None.
        masks: (B, 1, 256, 256) mask logits from a previous round, or None.
        multimask_output: return 3 masks per prompt instead of 1.

    Returns:
        low-resolution logits (B, 1|3, 256, 256) and IoU predictions (B, 1|3).
    """
    sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
    return model.mask_decoder(
        image_embeddings=embeddings,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask_output,
    )
