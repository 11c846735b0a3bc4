"""MedSAM's training loss: Dice + binary cross-entropy, unweighted sum."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Soft Dice loss with squared terms in the denominator (MONAI's ``DiceLoss(sigmoid=True,
    squared_pred=True)``, as MedSAM used), per sample then averaged.

    ``logits``, ``target``: (B, 1, H, W); target in {0, 1}.
    """
    prob = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    inter = (prob * target).sum(1)
    denom = (prob * prob).sum(1) + (target * target).sum(1)
    return (1.0 - (2.0 * inter + eps) / (denom + eps)).mean()


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice loss + mean binary cross-entropy on logits (B, 1, H, W)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float())
    return dice_loss(logits, target) + bce
