"""Tuning-set evaluation during training: DSC of the model's masks, made exactly as
:class:`~medsam.predictor.MedSAMPredictor` makes them (same transform, box scaling
and post-processing), from each object's unperturbed ground-truth box."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..metrics.overlap import dice
from ..modeling.sam import Sam, decode_prompts
from ..transforms import Transform
from .data import load_slice, row_box

if TYPE_CHECKING:
    from .step import EmbeddingCache


@torch.no_grad()
def tune_dice(model: Sam, transform: Transform, root: Path, rows: list[dict], device: torch.device,
              batch_size: int = 4, cache: EmbeddingCache | None = None) -> tuple[float, int]:
    """(sum of DSC, count) over ``rows`` (one object each); ``model`` a ``Sam``;
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
        if cache is not None:
            embeddings = cache.get([row["file"] for row in part], x)
        else:
            embeddings = model.image_encoder(x)
        low, _ = decode_prompts(model, embeddings, boxes=b)
        for i, (original, input_size) in enumerate(metas):
            pred = transform.postprocess(low[i:i + 1].float(), original, input_size)[0, 0]
            total += dice(pred.cpu().numpy(), masks[i])
            count += 1
    model.train(was_training)
    return total, count
