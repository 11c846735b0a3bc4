"""The training loop of ``medsam train`` (one process, or one rank of a torchrun job).

As in the MedSAM paper: the prompt encoder is frozen; the image encoder and mask
decoder are trained with Dice + BCE on the decoder's low-resolution logits, AdamW,
box prompts from the ground truth with a random 0-20 pixel perturbation (per
1024 pixels), gradient accumulation to an effective batch. Each epoch ends with a
tuning-set DSC; the run folder (rank 0 writes it) holds::

    config.json   the resolved settings        log.csv     one row per epoch
    steps.csv     one row per optimizer step   best.pth / last.pth   plain SAM weights
    resume.pt     exact resume state           tensorboard/   (with tensorboard: true)
"""

from __future__ import annotations

import contextlib
import csv
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import InputError
from . import distributed as dist_utils
from .checkpointing import RESUME_NAME, load_resume, save_resume, save_weights, set_rng_state
from .config import TrainConfig, config_dict, save_config
from .data import EpochBatchSampler, PreparedDataset
from .losses import dice_bce_loss
from .manifest import read_manifest
from .tuning import tune_dice

RUN_FILES = ("config.json", "log.csv", "steps.csv", "best.pth", "last.pth", RESUME_NAME)
EPOCH_COLUMNS = ("epoch", "global_step", "train_loss", "tune_dsc", "lr", "images_per_s",
                 "seconds")
STEP_COLUMNS = ("epoch", "step", "global_step", "loss", "lr")


@dataclass
class TrainResult:
    """What a run did: its folder, per-epoch rows (as in ``log.csv``), best tuning DSC."""

    run_dir: Path
    history: list[dict] = field(default_factory=list)
    best_dsc: float | None = None


class SegmentationStep(nn.Module):
    """(images (B, 3, S, S), boxes (B, 4) input frame) -> low-res logits (B, 1, 256, 256),
    with the prompt encoder frozen. Wrapped by DistributedDataParallel in a job."""

    def __init__(self, sam: nn.Module, freeze_image_encoder: bool = False) -> None:
        super().__init__()
        self.sam = sam
        self.freeze_image_encoder = freeze_image_encoder

    def forward(self, images: torch.Tensor | None, boxes: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings is None:
            with torch.set_grad_enabled(torch.is_grad_enabled()
                                        and not self.freeze_image_encoder):
                embeddings = self.sam.image_encoder(images)
        low, _ = self.sam.decode(embeddings, boxes=boxes)
        return low


class EmbeddingCache:
    """Image embeddings of a frozen encoder, computed once per stored slice (in RAM:
    4 MiB per slice). ``get(files, images)`` -> (B, 256, 64, 64)."""

    def __init__(self, encoder: nn.Module) -> None:
        self.encoder = encoder
        self.store: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def get(self, files: list[str], images: torch.Tensor) -> torch.Tensor:
        missing = [i for i, f in enumerate(files) if f not in self.store]
        if missing:
            computed = self.encoder(images[missing])
            for i, emb in zip(missing, computed):
                self.store[files[i]] = emb.clone()
        return torch.stack([self.store[f] for f in files])


def build_initial_model(config: TrainConfig) -> nn.Module:
    """The model to train: random (``init: scratch``, seeded) or loaded from any
    checkpoint :func:`medsam.load_model` reads; CheckpointError when it does not fit
    ``variant``."""
    from ..checkpoint import load_model
    from ..modeling.build import build_model

    torch.manual_seed(config.seed)
    if config.init in ("scratch", "", None):
        return build_model(config.variant)
    return load_model(config.init, variant=config.variant)


def select_rows(config: TrainConfig) -> tuple[list[dict], list[dict]]:
    """(train rows, tune rows) of the manifest, filtered to ``config.datasets``."""
    rows = read_manifest(config.data)
    if config.datasets:
        known = {r["dataset"] for r in rows}
        unknown = sorted(set(config.datasets) - known)
        if unknown:
            raise InputError(f"datasets {unknown} are not in {config.data} "
                             f"(it holds {sorted(known)})")
        rows = [r for r in rows if r["dataset"] in config.datasets]
    train = [r for r in rows if r["split"] == "train"]
    tune = [r for r in rows if r["split"] == "tune"]
    if not train:
        raise InputError(f"{config.data}: no training objects in the manifest")
    if config.tune_max_items is not None:
        tune = tune[: config.tune_max_items]
    return train, tune


def accumulation_steps(config: TrainConfig, world_size: int) -> int:
    """Micro-batches per optimizer step so that batch * world * steps >= effective_batch."""
    if config.effective_batch is None:
        return 1
    return max(1, math.ceil(config.effective_batch / (config.batch_size * world_size)))


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast for ``bf16``, or ``auto`` on CUDA with bf16 support; else nothing."""
    use = precision == "bf16" or (precision == "auto" and device.type == "cuda"
                                  and torch.cuda.is_bf16_supported())
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def set_train_mode(sam: nn.Module, freeze_bn: bool, freeze_image_encoder: bool = False) -> None:
    """Training mode, with the prompt encoder (frozen), and if asked BatchNorm or the
    whole image encoder, in eval mode."""
    sam.train()
    sam.prompt_encoder.eval()
    if freeze_image_encoder:
        sam.image_encoder.eval()
    if freeze_bn:
        for module in sam.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def make_scheduler(optimizer, config: TrainConfig, total_steps: int):
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def _prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> Path:
    run = Path(config.out)
    existing = [name for name in RUN_FILES if (run / name).exists()]
    if resume:
        if not (run / RESUME_NAME).is_file():
            raise InputError(f"{run}: nothing to resume ({RESUME_NAME} not found)")
    elif existing and not overwrite:
        raise InputError(f"{run}: run folder already holds {', '.join(existing)}",
                         option="resume")
    return run


def _append_csv(path: Path, columns: tuple[str, ...], row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({k: row[k] for k in columns})


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("tensorboard logging needs the tensorboard package: "
                         "pip install 'medsam[tensorboard]' (or set tensorboard: false)") from None
    return SummaryWriter(str(run / "tensorboard"))


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Run (or resume) training as ``config`` says; see the module docstring.

    Every input problem (missing or empty manifest, unknown dataset, checkpoint that
    does not fit the variant, occupied run folder, missing tensorboard) raises
    :class:`InputError` before the first step.
    """
    from tqdm import tqdm

    from ..transforms import get_transform, transform_for_variant

    env = dist_utils.read_env()
    device = dist_utils.device_for(env, config.device)
    run = _prepare_run_dir(config, resume, overwrite)
    train_rows, tune_rows = select_rows(config)
    transform = get_transform(config.transform or transform_for_variant(config.variant))
    sam = build_initial_model(config)
    if transform.image_size != sam.image_size:
        raise InputError(f"transform {transform.name!r} makes {transform.image_size}-pixel "
                         f"inputs but variant {config.variant!r} takes {sam.image_size}")
    state = load_resume(run / RESUME_NAME) if resume else None
    if state is not None:
        sam.load_state_dict(state["model"])
    writer = _tensorboard(run) if (config.tensorboard and env.is_main) else None

    accum = accumulation_steps(config, env.world_size)
    probe = EpochBatchSampler(len(train_rows), config.batch_size, config.seed,
                              world_size=env.world_size, accumulation=accum)
    steps = probe.steps if config.max_steps_per_epoch is None \
        else min(probe.steps, config.max_steps_per_epoch)
    if steps < 1:
        raise InputError(f"{len(train_rows)} training objects are fewer than one optimizer step "
                         f"({config.batch_size * env.world_size * accum} objects)")

    dist_utils.init(env, device)
    if env.is_main:
        run.mkdir(parents=True, exist_ok=True)
        if overwrite and not resume:
            for name in RUN_FILES:
                (run / name).unlink(missing_ok=True)
            shutil.rmtree(run / "tensorboard", ignore_errors=True)
        save_config(config, run / "config.json")

    sam.prompt_encoder.requires_grad_(False)
    if config.freeze_image_encoder:
        sam.image_encoder.requires_grad_(False)
    sam.to(device)
    if env.distributed and device.type == "cuda" and not config.freeze_bn:
        sam = nn.SyncBatchNorm.convert_sync_batchnorm(sam)
    set_train_mode(sam, config.freeze_bn, config.freeze_image_encoder)
    step_module: nn.Module = SegmentationStep(sam, config.freeze_image_encoder)
    if env.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)  # the IoU head gets no gradient from this loss
    params = [p for p in sam.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas),
                                  weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, steps * config.epochs)
    start_epoch, start_step, global_step, best = 0, 0, 0, None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, start_step = state["epoch"], state["step"]
        global_step, best = state["global_step"], state["best"]
        set_rng_state(state["rng"])

    dataset = PreparedDataset(config.data, train_rows, transform, config.box_shift, config.seed)
    my_tune = tune_rows[env.rank::env.world_size]
    cache = EmbeddingCache(sam.image_encoder) if config.cache_embeddings else None
    result = TrainResult(run, best_dsc=best)
    cfg = config_dict(config)

    def checkpoint(epoch: int, step: int) -> None:
        if env.is_main:
            save_weights(sam, run / "last.pth")
            save_resume(run / RESUME_NAME, sam, optimizer, scheduler, epoch, step, global_step,
                        best, cfg)

    try:
        for epoch in range(start_epoch, config.epochs):
            dataset.set_epoch(epoch)
            sampler = EpochBatchSampler(len(train_rows), config.batch_size, config.seed, epoch,
                                        env.rank, env.world_size, accum, start=start_step * accum)
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                                 num_workers=config.workers)
            batches = iter(loader)
            bar = tqdm(total=steps, initial=start_step, desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", disable=not (config.progress and env.is_main))
            loss_sum, loss_count, images, t0 = 0.0, 0, 0, time.perf_counter()
            for step in range(start_step, steps):
                optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for micro in range(accum):
                    batch = next(batches)
                    sync = contextlib.nullcontext()
                    if env.distributed and micro < accum - 1:
                        sync = step_module.no_sync()
                    with sync:
                        with autocast_context(config.precision, device):
                            images_in = batch["image"].to(device)
                            embeddings = None
                            if cache is not None:
                                files = [train_rows[int(i)]["file"] for i in batch["index"]]
                                embeddings = cache.get(files, images_in)
                            logits = step_module(images_in, batch["box"].to(device),
                                                 embeddings=embeddings)
                        loss = dice_bce_loss(logits, batch["mask"].to(device)) / accum
                        loss.backward()
                    step_loss += float(loss.detach())
                    images += len(batch["index"]) * env.world_size
                optimizer.step()
                scheduler.step()
                global_step += 1
                loss_sum, loss_count = loss_sum + step_loss, loss_count + 1
                rate = images / max(time.perf_counter() - t0, 1e-9)
                lr = optimizer.param_groups[0]["lr"]
                bar.set_postfix(loss=f"{step_loss:.4f}", img_s=f"{rate:.2f}")
                bar.update()
                if env.is_main:
                    _append_csv(run / "steps.csv", STEP_COLUMNS, {
                        "epoch": epoch, "step": step, "global_step": global_step,
                        "loss": step_loss, "lr": lr})
                    if writer is not None:
                        writer.add_scalar("train/loss", step_loss, global_step)
                if config.save_every and global_step % config.save_every == 0 and step + 1 < steps:
                    checkpoint(epoch, step + 1)
            bar.close()
            seconds = time.perf_counter() - t0
            start_step = 0
            total, count = tune_dice(sam, transform, Path(config.data), my_tune, device, cache=cache)
            loss_total, loss_n, total, count = dist_utils.all_sum(
                [loss_sum, loss_count, total, count], device)
            set_train_mode(sam, config.freeze_bn, config.freeze_image_encoder)
            dsc = total / count if count else None
            if dsc is not None and (best is None or dsc > best):
                best = dsc
                if env.is_main:
                    save_weights(sam, run / "best.pth")
            row = {"epoch": epoch, "global_step": global_step,
                   "train_loss": loss_total / max(loss_n, 1), "tune_dsc": dsc,
                   "lr": optimizer.param_groups[0]["lr"], "images_per_s": images / seconds,
                   "seconds": seconds}
            result.history.append(row)
            checkpoint(epoch + 1, 0)
            if env.is_main:
                _append_csv(run / "log.csv", EPOCH_COLUMNS, row)
                if writer is not None:
                    writer.add_scalar("train/epoch_loss", row["train_loss"], epoch)
                    if dsc is not None:
                        writer.add_scalar("tune/dsc", dsc, epoch)
            dist_utils.barrier()
    finally:
        if writer is not None:
            writer.close()
        dist_utils.shutdown()
    result.best_dsc = best
    return result
