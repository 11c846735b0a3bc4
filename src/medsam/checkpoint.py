"""Reading and writing checkpoint files (assembling a model from one is
:mod:`medsam.loading`).

A checkpoint is a PyTorch file holding a state dict in SAM's key layout
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``): Meta's
``sam_vit_*.pth``, ``medsam_vit_b.pth``, ``lite_medsam.pth``, or a training
checkpoint ``{"model": state_dict, "optimizer": ..., "epoch": ...}``, possibly
saved from a ``DistributedDataParallel`` (``module.``) or ``torch.compile``
(``_orig_mod.``) wrapper; or a model of another registered kind that records itself
(the U-Net's ``net.*``). Files are read with ``torch.load(weights_only=True)``:
no code in a checkpoint is ever run.

Our own checkpoints (training's ``best.pth`` / ``last.pth``) record how they were
made: variant, transform, input size, training data, and the architecture of kinds
that have one to record. The record is kept where torch keeps per-module versions,
``state_dict._metadata[""]["medsam"]``, so the keys stay SAM's layout and any SAM
loader still reads the file (:func:`with_metadata`, :func:`read_checkpoint`).

Every problem a user can cause (missing file, not a torch file, truncated file,
no model weights) raises :class:`~medsam.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

import torch

from .errors import CheckpointError
from .modeling.registry import MODEL_REGISTRY, SAM_COMPONENTS

StateDict = Dict[str, torch.Tensor]

COMPONENTS = SAM_COMPONENTS
# wrappers whose prefix is stripped when every key carries it
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")
# keys under which training scripts nest the model's state dict
NESTING_KEYS = ("model", "state_dict", "model_state_dict")
# pixel normalisation buffers some SAM versions save; our models hold none
IGNORED_KEYS = ("pixel_mean", "pixel_std")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")
_LISTED = 5  # how many keys an error message lists per kind of problem
#: the key of our record in ``state_dict._metadata[""]``
METADATA_KEY = "medsam"


def read_checkpoint(path: Union[str, os.PathLike]) -> Tuple[StateDict, Dict[str, Any]]:
    """Read the model's state dict and our record of it from the checkpoint ``path``.

    Accepts a plain state dict, ``{"model": ...}`` / ``{"state_dict": ...}``
    training checkpoints and ``module.`` / ``_orig_mod.`` / ``model.``
    prefixes; tensors are loaded onto the CPU. Returns a new dict whose keys
    start with ``image_encoder.``, ``prompt_encoder.`` or ``mask_decoder.``
    (pixel mean/std buffers dropped), or the key prefixes of the kind the file records
    (``net.`` for a U-Net), and the record saved by :func:`with_metadata` (``{}`` for
    other files). Raises :class:`CheckpointError`.
    """
    path = Path(path)
    loaded = _torch_load(path)
    state, metadata = _unwrap(loaded, path)
    kind = MODEL_REGISTRY.get(str(metadata.get("variant")))
    prefixes = kind.key_prefixes if kind is not None else COMPONENTS
    if not any(key.startswith(prefixes) for key in state):
        raise CheckpointError(
            f"{path}: no model weights found (expected keys starting with "
            f"{', '.join(c + '*' for c in prefixes)}); it holds {first_items(list(state))}")
    return state, metadata


def load_state_dict(path: Union[str, os.PathLike]) -> StateDict:
    """The model's state dict from the checkpoint ``path`` (see :func:`read_checkpoint`)."""
    return read_checkpoint(path)[0]


def with_metadata(state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
                  ) -> "OrderedDict[str, torch.Tensor]":
    """``state`` carrying ``metadata`` (plain values: str, int, float, lists, dicts) in
    ``_metadata[""]["medsam"]``; saved with ``torch.save`` it keeps SAM's key layout."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict(state)
    out._metadata = OrderedDict({"": {METADATA_KEY: dict(metadata)}})  # type: ignore[attr-defined]
    return out


def _torch_load(path: Path) -> object:
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: is empty, not a PyTorch checkpoint")
    is_zip = head.startswith(b"PK\x03\x04")
    is_pickle = head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise CheckpointError(f"{path}: is not a PyTorch checkpoint (unrecognised file format)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. odd pickle protocols in garbage files
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: {explain_load_failure(str(error))}") from None


def explain_load_failure(message: str) -> str:
    """A one-line explanation of a failed ``torch.load(weights_only=True)``."""
    found = (re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
             or re.search(r"unsupported GLOBAL ([\w.]+)", message))
    if found:
        return (f"holds a Python object ({found.group(1)}) besides tensors, which is not loaded "
                f"for safety (torch.load weights_only=True)")
    detail = message
    if "WeightsUnpickler error:" in message:
        detail = message.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    reason = lines[0].split(". ")[0].rstrip(".") if lines else "unknown error"
    return f"cannot be read as a PyTorch checkpoint; the file is truncated or damaged ({reason})"


def _unwrap(loaded: object, path: Path) -> Tuple[StateDict, Dict[str, Any]]:
    """The model state dict inside ``loaded``, with wrapper prefixes removed, and the
    record :func:`with_metadata` put in it (``{}`` when none)."""
    state = loaded
    for _ in range(2):
        if isinstance(state, Mapping) and not any(str(k).startswith(COMPONENTS) for k in state):
            nested = next((state[k] for k in NESTING_KEYS
                           if k in state and isinstance(state[k], Mapping)), None)
            if nested is not None:
                state = nested
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    versions = getattr(state, "_metadata", None)
    root = versions.get("", {}) if isinstance(versions, Mapping) else {}
    metadata = root.get(METADATA_KEY, {}) if isinstance(root, Mapping) else {}
    state = {str(key): value for key, value in state.items()}
    state = _strip_prefixes(state)
    for key in IGNORED_KEYS:
        state.pop(key, None)
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad and any(key.startswith(COMPONENTS) for key in state):
        raise CheckpointError(f"{path}: is not a state dict: {first_items(bad)} are not tensors")
    return state, dict(metadata) if isinstance(metadata, Mapping) else {}


def _strip_prefixes(state: StateDict) -> StateDict:
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
                changed = True
    return state


def first_items(items: List[str]) -> str:
    """The first few of ``items`` for a message (``...`` and how many more)."""
    shown = ", ".join(items[:_LISTED])
    if len(items) > _LISTED:
        shown += f", ... ({len(items) - _LISTED} more)"
    return shown or "nothing"


def save_torch_file(obj: Any, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """``torch.save`` of plain values (tensors, numbers, strings, dicts) to ``path``,
    atomically. The file is serialised in memory and written by Python: torch's own
    writer turns a full disk into an unclear error, Python's into one that names it.

    Raises:
        InputError: ``path`` exists and ``overwrite`` is false.
        OutputError: the file could not be written (a full disk).
    """
    import io

    from .fileutil import atomic_path

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return Path(path)
