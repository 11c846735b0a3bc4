"""Training settings: one frozen dataclass, read from YAML/JSON and overridden from
the command line (``--set key=value``).

Defaults follow the MedSAM paper: AdamW (lr 1e-4, betas 0.9/0.999, weight decay
0.01), Dice + BCE, box perturbation of 0-20 pixels (at 1024), effective batch 160
when ``effective_batch`` is set so. Example ``train.yaml``::

    data: prepared/              # a `medsam prepare` output folder
    out: runs/lite-kvasir        # the run folder
    variant: lite                # vit_b, vit_l, vit_h, lite, or unet (box-cropped U-Net)
    init: lite_medsam            # checkpoint path, weights name, or "scratch"
    epochs: 10
    batch_size: 8
    effective_batch: 160         # gradient accumulation reaches this (all ranks)
    max_minutes: 60              # optional time budget: the epoch in progress ends
                                 # (tuning DSC, checkpoints) once it is spent
    precision: auto              # auto (bf16 on CUDA when supported), bf16, fp32
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError

PRECISIONS = ("auto", "bf16", "fp32")
PROMPT_MODES = ("box", "interactive")
SCHEDULERS = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting (see the module docstring; ``medsam train --help``)."""

    data: str = ""
    out: str = ""
    variant: str = "lite"
    init: str = "scratch"
    transform: str | None = None         # None: the variant's default (medsam.transforms)
    datasets: tuple[str, ...] | None = None   # use only these datasets of the manifest
    epochs: int = 1
    batch_size: int = 2                  # per process, per micro-batch
    effective_batch: int | None = None   # None: no accumulation
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    scheduler: str = "constant"
    box_shift: float = 20.0              # pixels in a 1024 frame, scaled to the input size
    precision: str = "auto"
    seed: int = 0
    workers: int = 0                     # DataLoader worker processes
    device: str = "auto"
    max_steps_per_epoch: int | None = None
    max_minutes: float | None = None     # time budget: stop after the step that passes it
    max_steps: int | None = None         # stop after this many optimizer steps in all (the
                                         # epoch in progress ends there, as with max_minutes)
    tune_max_items: int | None = None    # None: evaluate every tuning object
    freeze_bn: bool = False              # BatchNorm (lite encoder) in eval mode
    freeze_image_encoder: bool = False   # train the mask decoder only (paper: False)
    cache_embeddings: bool = False       # with a frozen encoder: embed each slice once (RAM)
    embedding_folder: str | None = None  # cache_embeddings on disk, in this folder (large sets)
    prompt_mode: str = "box"             # "interactive": clicks, mask feedback, propagation
                                         # samples (medsam.training.interactive)
    click_rounds: int = 8                # interactive: correction rounds after the first prompt
    propagation_fraction: float = 0.5    # interactive: objects that start from a neighbour's mask
    click_first_fraction: float = 0.2    # interactive: micro-batches whose first prompt is a click
    slice_stride: int = 1                # train on every n-th slice of a volume (all 2D images)
    save_every: int = 0                  # also checkpoint every N optimizer steps (0: per epoch)
    tensorboard: bool = False
    progress: bool = True


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Convert ``value`` to the type of field ``name``; InputError when it does not fit."""
    hint = str(_FIELDS[name].type)
    if value is None:
        if "None" in hint:
            return None
        raise InputError(f"setting {name!r} cannot be empty")
    try:
        if hint.startswith("tuple[str"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
        if hint.startswith("tuple[float"):
            items = value.split(",") if isinstance(value, str) else list(value)
            out = tuple(float(v) for v in items)
            if len(out) != 2:
                raise ValueError
            return out
        if hint == "bool":
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, bool):
                return value
            raise ValueError
        if hint.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if hint.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise InputError(f"setting {name!r}: {value!r} is not a valid {hint}") from None


def _parse_scalar(text: str) -> Any:
    if text.lower() in ("null", "none", "~"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def make_config(values: dict[str, Any]) -> TrainConfig:
    """A checked :class:`TrainConfig` from a dict of settings."""
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise InputError(f"unknown training settings {unknown}; known: {sorted(_FIELDS)}")
    config = TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    check_config(config)
    return config


def check_config(c: TrainConfig) -> None:
    """InputError for settings out of range."""
    from ..modeling.registry import MODEL_REGISTRY

    kind = MODEL_REGISTRY.get(c.variant)
    if kind is None:
        raise InputError(f"variant {c.variant!r} unknown; choose one of {', '.join(MODEL_REGISTRY)}")
    if not kind.promptable and (c.freeze_image_encoder or c.cache_embeddings):
        raise InputError(f"freeze_image_encoder and cache_embeddings are for SAM models; {c.variant!r} "
                         f"has no separate image encoder")
    if c.max_steps is not None and c.max_steps < 1:
        raise InputError(f"max_steps must be at least 1, got {c.max_steps}")
    if c.max_minutes is not None and c.max_minutes <= 0:
        raise InputError(f"max_minutes must be positive, got {c.max_minutes}")
    for name in ("epochs", "batch_size"):
        if getattr(c, name) < 1:
            raise InputError(f"{name} must be at least 1, got {getattr(c, name)}")
    if c.effective_batch is not None and c.effective_batch < c.batch_size:
        raise InputError(f"effective_batch ({c.effective_batch}) is below batch_size "
                         f"({c.batch_size})")
    if c.lr <= 0 or c.weight_decay < 0 or not all(0 <= b < 1 for b in c.betas):
        raise InputError("lr must be positive, weight_decay non-negative, betas in [0, 1)")
    if c.precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {c.precision!r}")
    if c.scheduler not in SCHEDULERS:
        raise InputError(f"scheduler must be one of {SCHEDULERS}, got {c.scheduler!r}")
    if c.prompt_mode not in PROMPT_MODES:
        raise InputError(f"prompt_mode must be one of {PROMPT_MODES}, got {c.prompt_mode!r}")
    if c.prompt_mode == "interactive" and not (kind.promptable and c.freeze_image_encoder):
        raise InputError("prompt_mode interactive trains the prompt encoder and mask decoder of a SAM "
                         "model over a frozen image encoder: it needs freeze_image_encoder: true")
    if c.click_rounds < 0 or c.slice_stride < 1 \
            or not (0 <= c.propagation_fraction <= 1 and 0 <= c.click_first_fraction <= 1):
        raise InputError("click_rounds must not be negative, slice_stride at least 1, and "
                         "propagation_fraction and click_first_fraction in [0, 1]")
    if c.embedding_folder and not c.cache_embeddings:
        raise InputError("embedding_folder keeps the cached embeddings: it needs cache_embeddings: true")
    if c.cache_embeddings and not c.freeze_image_encoder:
        raise InputError("cache_embeddings needs freeze_image_encoder: true (a trained encoder "
                         "changes the embeddings)")
    if c.box_shift < 0 or c.workers < 0 or c.save_every < 0:
        raise InputError("box_shift, workers and save_every must not be negative")


def load_config(path: str | os.PathLike | None, overrides: Sequence[str] = (),
                **explicit: Any) -> TrainConfig:
    """Settings from a YAML/JSON file (optional), then ``key=value`` overrides, then
    ``explicit`` keyword settings that are not None (command-line options)."""
    from ..datasets.description import read_structured_file

    values: dict[str, Any] = {}
    if path is not None:
        data = read_structured_file(path)
        if not isinstance(data, dict):
            raise InputError(f"{path}: a training config must be a mapping of settings")
        values.update(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"a setting override must be key=value, got {item!r}")
        values[key.strip()] = _parse_scalar(text.strip())
    values.update({k: v for k, v in explicit.items() if v is not None})
    if not values.get("data"):
        raise InputError("no prepared data folder given (setting 'data')")
    if not values.get("out"):
        raise InputError("no run folder given (setting 'out')")
    return make_config(values)


def config_dict(config: TrainConfig) -> dict[str, Any]:
    """JSON-ready dict of ``config`` (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as JSON (loadable by :func:`load_config`), atomically."""
    from ..fileutil import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(config_dict(config), indent=2) + "\n", encoding="utf-8")
    return path


