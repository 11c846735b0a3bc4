"""One training step's pieces: the model call with the prompt encoder frozen, the
embedding cache for a frozen image encoder, train/eval modes and bf16 autocast.
Used by :mod:`medsam.training.trainer` and ``benchmarks/bench_train.py``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn as nn

from ..modeling.registry import model_kind
from ..modeling.sam import Sam, decode_prompts
from ..modeling.unet import BoxUNet
from ..precision import precision_context


def box_logits(model: Sam | BoxUNet, images: torch.Tensor | None, boxes: torch.Tensor,
               embeddings: torch.Tensor | None = None, freeze_image_encoder: bool = False
               ) -> torch.Tensor:
    """Low-res logits (B, 1, 256, 256) of one box per image: images (B, 3, S, S) (or a
    SAM model's precomputed ``embeddings``), boxes (B, 4) XYXY in the input frame. A
    model that is not promptable (the U-Net; see :class:`~medsam.modeling.registry.ModelKind`)
    takes the images and boxes directly."""
    if not model_kind(model.variant).promptable:
        assert images is not None
        return model(images, boxes)
    sam = cast(Sam, model)
    if embeddings is None:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_image_encoder):
            embeddings = sam.image_encoder(images)
    low, _ = decode_prompts(sam, embeddings, boxes=boxes)
    return low


class SegmentationStep(nn.Module):
    """(images (B, 3, S, S), boxes (B, 4) input frame) -> low-res logits (B, 1, 256, 256),
    with a SAM model's prompt encoder frozen. Wrapped by DistributedDataParallel in a job."""

    def __init__(self, sam: Sam | BoxUNet, freeze_image_encoder: bool = False) -> None:
        super().__init__()
        self.sam = sam
        self.freeze_image_encoder = freeze_image_encoder

    def forward(self, images: torch.Tensor | None, boxes: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        return box_logits(self.sam, images, boxes, embeddings, self.freeze_image_encoder)


class EmbeddingCache:
    """Image embeddings of a frozen encoder, computed once per stored slice: in RAM (4 MiB
    per slice), or with ``folder`` on disk (one ``.npy`` per slice, read back memory-mapped,
    for sets whose embeddings exceed the memory). ``get(files, images)`` -> (B, 256, 64, 64).
    ``namespace`` names the encoder (its weights and preprocessing): files of another
    encoder in the same folder are never read."""

    def __init__(self, encoder: nn.Module, folder: str | None = None, namespace: str = "") -> None:
        self.encoder = encoder
        self.store: dict[str, torch.Tensor] = {}
        self.folder = None if folder is None else Path(folder)
        self.namespace = namespace

    def _path(self, file: str) -> Path:
        import hashlib

        assert self.folder is not None
        return self.folder / (hashlib.sha256(f"{self.namespace}|{file}".encode()).hexdigest()[:32] + ".npy")

    def _load(self, file: str) -> torch.Tensor | None:
        if file in self.store:
            return self.store[file]
        if self.folder is not None and self._path(file).is_file():
            return torch.from_numpy(np.load(self._path(file), mmap_mode="r").copy())
        return None

    @torch.no_grad()
    def get(self, files: list[str], images: torch.Tensor) -> torch.Tensor:
        found = [self._load(f) for f in files]
        missing = [i for i, e in enumerate(found) if e is None]
        if missing:
            computed = self.encoder(images[missing]).float().cpu()
            for i, emb in zip(missing, computed):
                kept = emb.clone()
                found[i] = kept
                if self.folder is None:
                    self.store[files[i]] = kept
                else:
                    from ..fileutil import atomic_path

                    self.folder.mkdir(parents=True, exist_ok=True)
                    with atomic_path(self._path(files[i])) as tmp, open(tmp, "wb") as fh:
                        np.save(fh, emb.numpy())
        return torch.stack([e for e in found if e is not None]).to(images.device)


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``bf16``, or ``auto`` on CUDA with bf16 support; else nothing."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda"
                                  and torch.cuda.is_bf16_supported())
    return precision_context("bf16" if use else "exact", device)


def set_train_mode(sam: Sam | BoxUNet, freeze_bn: bool, freeze_image_encoder: bool = False) -> None:
    """Training mode, with a SAM model's prompt encoder (frozen), and if asked BatchNorm
    or the whole image encoder, in eval mode."""
    sam.train()
    if not model_kind(sam.variant).promptable:
        return
    cast(Sam, sam).prompt_encoder.eval()
    if freeze_image_encoder:
        cast(Sam, sam).image_encoder.eval()
    if freeze_bn:
        for module in sam.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
