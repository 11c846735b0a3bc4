"""Multi-process jobs (training, and segmenting a folder of cases) from the
environment that ``torchrun`` (or SLURM with ``torchrun``) provides: ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``. Without them
everything runs in one process.

Reading the environment does not import torch (a command checks its inputs before paying
for it); the functions that talk to other processes import it when called."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"environment variable {name}={text!r} is not an integer") from None


def read_env() -> DistEnv:
    """RANK / LOCAL_RANK / WORLD_SIZE from the environment (defaults: one process)."""
    env = DistEnv(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), _env_int("WORLD_SIZE", 1))
    if env.world_size < 1 or not 0 <= env.rank < env.world_size:
        raise InputError(f"RANK={env.rank} and WORLD_SIZE={env.world_size} do not fit")
    if env.distributed and not os.environ.get("MASTER_ADDR"):
        raise InputError("WORLD_SIZE > 1 but MASTER_ADDR is not set; start with torchrun")
    return env


def init(env: DistEnv, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo otherwise) when ``env`` is distributed."""
    import torch.distributed as dist

    if env.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum each value over all processes (identity in one process)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def device_for(env: DistEnv, requested: str) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for CUDA jobs, else the request."""
    import torch

    from .devices import resolve_device

    device = resolve_device(requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    return device


def gather(value: object) -> list[object]:
    """Every process's ``value``, in rank order, in every process (``[value]`` alone)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return [value]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out
