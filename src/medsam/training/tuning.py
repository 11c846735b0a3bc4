"""Tuning-set evaluation during training: DSC of the model's masks, made exactly as
:class:`~medsam.predictor.MedSAMPredictor` makes them (same transform, box scaling
and post-processing), from each object's unperturbed ground-truth box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..metrics.overlap import dice
from ..modeling.sam import Sam
from ..modeling.unet import BoxUNet
from ..transforms import Transform
from .data import load_slice, row_box
from .step import box_logits

if TYPE_CHECKING:
    from .step import EmbeddingCache


@torch.no_grad()
def tune_dice(model: Sam | BoxUNet, transform: Transform, root: Path, rows: list[dict], device: torch.device,
              batch_size: int = 4, cache: EmbeddingCache | None = None) -> tuple[float, int]:
    """(sum of DSC, count) over ``rows`` (one object each); ``model`` a ``Sam`` or ``BoxUNet``;
    ``cache``: an :class:`~medsam.training.step.EmbeddingCache` (frozen encoder)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        images, boxes, masks, metas = [], [], [], []
        for row in part:
            image, mask = load_slice(root, row)
            prepared = transform.prepare_image(image)
            images.append(torch.from_numpy(prepared.tensor))
            boxes.append(transform.apply_boxes(row_box(row)[None], prepared.original_size)[0])
            masks.append(mask)
            metas.append((prepared.original_size, prepared.input_size))
        x = torch.stack(images).to(device)
        b = torch.as_tensor(np.stack(boxes), dtype=torch.float32, device=device)
        embeddings = cache.get([row["file"] for row in part], x) if cache is not None else None
        low = box_logits(model, x, b, embeddings)
        for i, (original, input_size) in enumerate(metas):
            pred = transform.postprocess(low[i:i + 1].float(), original, input_size)[0, 0]
            total += dice(pred.cpu().numpy(), masks[i])
            count += 1
    model.train(was_training)
    return total, count
