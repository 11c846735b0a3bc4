"""Run-folder checkpoints.

``best.pth`` / ``last.pth``: the model's plain state dict in SAM's key layout
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), loadable by
:func:`medsam.load_model` and ``medsam segment`` with no conversion.
``resume.pt``: everything needed to continue exactly: model, optimizer,
scheduler, epoch, optimizer step within the epoch, best tuning DSC, RNG states.
All are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..fileutil import atomic_path

RESUME_NAME = "resume.pt"
RESUME_FORMAT = "medsam-train-resume-1"


def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU, without DDP / compile prefixes."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_weights(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(plain_state_dict(model), tmp)
    return path


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume(path: str | os.PathLike, model, optimizer, scheduler, epoch: int, step: int,
                global_step: int, best: float | None, config: dict) -> Path:
    """Write the resume state. ``epoch``/``step``: the next optimizer step to run is
    step ``step`` of epoch ``epoch``."""
    path = Path(path)
    state = {"format": RESUME_FORMAT, "model": plain_state_dict(model),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": epoch, "step": step, "global_step": global_step, "best": best,
             "rng": rng_state(), "config": config}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_resume(path: str | os.PathLike) -> dict:
    """Read a resume state; InputError when it is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unreadable / truncated file
        raise InputError(f"{path}: cannot read resume state ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise InputError(f"{path}: not a medsam training resume file")
    return state
