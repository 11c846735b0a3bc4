"""Numerical precision of inference: the exact fp32 path, or bf16 where it is fast.

* ``"exact"``: float32 throughout; the reference implementations' numbers.
* ``"bf16"``: the image encoder and the mask decoder run under bf16 autocast
  (matrix products and convolutions in bfloat16, reductions and normalisations in
  float32); embeddings are stored as float32.
* ``"auto"``: the fastest mode that meets the accuracy guard on the hardware.

The guard: a fast mode is checked against the exact path on real images with the
real LiteMedSAM weights (``benchmarks/bench_precision.py``, ``tests/evaluation/test_agreement.py``):
per-image mask agreement (Dice between the two label maps) >= 99.5 % and per-dataset
median DSC within 0.5 points (:data:`GUARD_AGREEMENT`, :data:`GUARD_DSC_POINTS`).
bf16 keeps the median DSC (within 0.25 points on every 2D dataset) but not the
per-image agreement: on an AVX512-BF16 CPU some images agree only to 98-99 %, and
it is no better with the encoder alone or the decoder alone in bf16. So ``"auto"``
is ``"exact"`` on every device until a fast mode passes; bf16 is there for whoever
prefers speed (1.7-1.9x for the encoder where bf16 is native, see
:func:`native_bf16`) to per-image agreement.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from .errors import InputError

#: the precisions a caller may ask for
PRECISIONS = ("auto", "exact", "bf16")
#: minimum per-image agreement (Dice between fast and exact masks) a fast mode must keep
GUARD_AGREEMENT = 0.995
#: largest allowed change of a dataset's median DSC, in percentage points
GUARD_DSC_POINTS = 0.5

_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic natively (so bf16 is faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return any(flag in _cpu_flags() for flag in _BF16_CPU_FLAGS)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"exact"`` or ``"bf16"`` for a requested ``precision`` on ``device`` (the module
    docstring says why ``"auto"`` is ``"exact"`` everywhere for now); raises
    :class:`InputError` for an unknown name."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return "exact" if precision == "auto" else precision


def precision_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``"bf16"``; nothing for ``"exact"``."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
