"""Run-folder checkpoints.

``best.pth`` / ``last.pth``: the model's state dict in SAM's key layout
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``), loadable by
:func:`medsam.load_model` and ``medsam segment`` with no conversion, recording how it
was made (variant, transform, input size, training data; see
:func:`medsam.checkpoint.with_metadata`), so it is used with the right preprocessing.
``resume.pt``: everything needed to continue exactly: model, optimizer,
scheduler, epoch, optimizer step within the epoch, best tuning DSC, RNG states.
It holds only tensors and plain Python values (numbers, strings, lists, dicts), so
it is read with ``torch.load(weights_only=True)``: a resume file from someone else
cannot run code. All are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError

RESUME_NAME = "resume.pt"
RESUME_FORMAT = "medsam-train-resume-1"


def plain_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU, without DDP / compile prefixes."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_weights(model: torch.nn.Module, path: str | os.PathLike, metadata: dict | None = None
                 ) -> Path:
    """Write the model's weights (with ``metadata``, plain values) to ``path``, atomically."""
    from ..checkpoint import save_torch_file, with_metadata

    path = Path(path)
    save_torch_file(with_metadata(plain_state_dict(model), metadata or {}), path)
    return path


def save_parts(weights: str | os.PathLike, path: str | os.PathLike, base: str,
               components: tuple[str, ...] = ("prompt_encoder", "mask_decoder"),
               half: bool = True) -> Path:
    """Write the trained ``components`` of the checkpoint ``weights`` (a run's ``best.pth``)
    as a parts file over the named ``base`` weights (:data:`medsam.loading.PARTS_FORMAT`;
    :func:`medsam.load_model` puts them back over the base), atomically. ``half``: stored
    as float16 (half the size; loaded back as float32). CheckpointError when the image
    encoder differs from the base's, which a parts file could not carry."""
    from ..checkpoint import read_checkpoint, save_torch_file, with_metadata
    from ..errors import CheckpointError
    from ..loading import PARTS_FORMAT, _resolve

    state, metadata = read_checkpoint(weights)
    base_state, _ = read_checkpoint(_resolve(base))
    for key, value in base_state.items():
        if not key.startswith(tuple(c + "." for c in components)) and \
                (key not in state or not torch.equal(state[key].float(), value.float())):
            raise CheckpointError(f"{weights}: {key} differs from the base weights {base!r}; only "
                                  f"{', '.join(components)} may be trained in a parts file")
    parts = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in state.items() if k.startswith(tuple(c + "." for c in components))}
    record = {**metadata, "format": PARTS_FORMAT, "base": base, "parts": sorted(components)}
    path = Path(path)
    save_torch_file(with_metadata(parts, record), path)
    return path


def rng_state() -> dict:
    """The torch, numpy, Python (and CUDA) random states as tensors and plain values."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, epoch: int, step: int,
                global_step: int, best: float | None, config: dict,
                epoch_stats: dict | None = None) -> Path:
    """Write the resume state. ``epoch``/``step``: the next optimizer step to run is
    step ``step`` of epoch ``epoch``; ``epoch_stats``: plain numbers of the epoch so far
    (its loss sum and count, images, seconds) when that step is not the first."""
    path = Path(path)
    state = {"format": RESUME_FORMAT, "model": plain_state_dict(model),
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "epoch": epoch, "step": step, "global_step": global_step, "best": best,
             "rng": rng_state(), "config": config, "epoch_stats": dict(epoch_stats or {})}
    from ..checkpoint import save_torch_file

    save_torch_file(state, path)
    return path


def load_resume(path: str | os.PathLike) -> dict:
    """Read a resume state with ``torch.load(weights_only=True)`` (no code in the file is
    run); InputError when it is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, truncated, or holding Python objects
        from ..checkpoint import explain_load_failure

        raise InputError(f"{path}: cannot read resume state: {explain_load_failure(str(exc))}"
                         ) from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise InputError(f"{path}: not a medsam training resume file")
    return state
