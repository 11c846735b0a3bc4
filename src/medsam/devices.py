"""Choosing the torch device to run on, with a clear error when it is unavailable."""

from __future__ import annotations

import torch

from .errors import InputError

SUPPORTED = ("cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def default_device() -> torch.device:
    """CUDA when available, then Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"``/None (see
    :func:`default_device`) into a :class:`torch.device`, raising :class:`InputError`
    when that device cannot be used on this machine."""
    if device is None or device == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"device {device!r} is not a device name; use one of "
                         f"{', '.join(SUPPORTED)} (or cuda:N)") from None
    if dev.type not in SUPPORTED:
        raise InputError(f"device {device!r} is not supported; use one of {', '.join(SUPPORTED)}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} was requested but CUDA is not available "
                             f"(no NVIDIA GPU, or this torch build has no CUDA support)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} was requested but only "
                             f"{torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not mps_available():
        raise InputError(f"device {device!r} was requested but Apple MPS is not available "
                         f"on this machine")
    return dev
