"""The training loop of ``medsam train`` (one process, or one rank of a torchrun job).

As in the MedSAM paper: the prompt encoder is frozen; the image encoder and mask
decoder are trained with Dice + BCE on the decoder's low-resolution logits, AdamW,
box prompts from the ground truth with a random 0-20 pixel perturbation (per
1024 pixels), gradient accumulation to an effective batch. Each epoch ends with a
tuning-set DSC. With a time budget (``max_minutes``) the epoch in progress ends at
the first optimizer step past it and the run stops after that epoch's tuning DSC and
checkpoints. A ``unet`` variant (:class:`~medsam.modeling.unet.BoxUNet`) trains the
same way: same samples, loss and tuning metric. The run folder (rank 0 writes it) holds::

    config.json   the resolved settings        log.csv     one row per epoch
    steps.csv     one row per optimizer step   best.pth / last.pth   SAM-layout weights
                                               recording variant, transform and data
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
from typing import Any, Callable, Iterator, cast

import torch
import torch.nn as nn

from .. import distributed as dist_utils
from ..errors import InputError, install_hint
from ..modeling.registry import model_kind
from ..modeling.sam import Sam
from ..modeling.unet import BoxUNet
from ..transforms import Transform
from .checkpointing import RESUME_NAME, load_resume, save_resume, save_weights, set_rng_state
from .config import TrainConfig, config_dict, save_config
from .data import EpochBatchSampler, PreparedDataset
from .losses import dice_bce_loss
from .manifest import read_manifest
from .step import EmbeddingCache, SegmentationStep, autocast_context, set_train_mode
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
    out_of_time: bool = False


def build_initial_model(config: TrainConfig) -> Sam | BoxUNet:
    """The model to train: random (``init: scratch``, seeded) or loaded from any
    checkpoint :func:`medsam.load_model` reads; CheckpointError when it does not fit
    ``variant``."""
    from ..loading import load_model
    from ..modeling.registry import build_model

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
    train = [r for r in rows if r["split"] == "train"
             and (int(r["slice"]) < 0 or int(r["slice"]) % config.slice_stride == 0)]
    tune = [r for r in rows if r["split"] == "tune"
            and (int(r["slice"]) < 0 or int(r["slice"]) % config.slice_stride == 0)]
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


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
                   ) -> torch.optim.lr_scheduler.LRScheduler:
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)


def _prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> Path:
    run = Path(config.out)
    existing = [name for name in RUN_FILES if (run / name).exists()]
    if resume:
        if not (run / RESUME_NAME).is_file() and not (run / "config.json").is_file():
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


def _tensorboard(run: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("tensorboard logging needs the tensorboard package: "
                         f"{install_hint('tensorboard')} (or set tensorboard: false)") from None
    return SummaryWriter(str(run / "tensorboard"))


@dataclass
class _Run:
    """One training run while it runs: what :func:`_start` set up, and the counters that
    move (next epoch and step, optimizer steps so far, best tuning DSC)."""

    config: TrainConfig
    env: dist_utils.DistEnv
    device: torch.device
    folder: Path
    sam: Sam | BoxUNet
    step_module: Any  # SegmentationStep, or DistributedDataParallel around it
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    dataset: PreparedDataset
    train_rows: list[dict]
    tune_rows: list[dict]
    transform: Transform
    cache: EmbeddingCache | None
    writer: Any  # a tensorboard SummaryWriter, or None
    steps: int
    accum: int
    metadata: dict
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best: float | None = None
    started: float = field(default_factory=time.perf_counter)
    out_of_time: bool = False
    #: the interrupted epoch's statistics so far (all processes summed), when resuming mid-epoch
    resumed_stats: dict = field(default_factory=dict)

    def budget_spent(self) -> bool:
        """The time budget (``max_minutes``) is spent."""
        limit = self.config.max_minutes
        return limit is not None and time.perf_counter() - self.started > 60 * limit


@dataclass
class _EpochStats:
    loss_sum: float = 0.0
    loss_count: int = 0
    images: int = 0
    seconds: float = 0.0


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> TrainResult:
    """Run (or resume) training as ``config`` says; see the module docstring.

    Every input problem (missing or empty manifest, unknown dataset, checkpoint that
    does not fit the variant, occupied run folder, missing tensorboard) raises
    :class:`InputError` before the first step. The run folder is held (a lock file) while
    the run lasts; ``resume`` continues a run from its last checkpoint exactly as if it
    had not stopped (a run stopped before its first checkpoint starts again).
    """
    import contextlib

    from ..fileutil import output_lock

    env = dist_utils.read_env()
    with output_lock(config.out) if env.is_main else contextlib.nullcontext():
        return _train(config, resume, overwrite)


def _train(config: TrainConfig, resume: bool, overwrite: bool) -> TrainResult:
    run = _start(config, resume, overwrite)
    result = TrainResult(run.folder, best_dsc=run.best)
    try:
        for epoch in range(run.epoch, config.epochs):
            stats = _train_epoch(run, epoch)
            result.history.append(_end_epoch(run, epoch, stats))
            if run.out_of_time:
                break
    finally:
        if run.writer is not None:
            run.writer.close()
        dist_utils.shutdown()
    result.best_dsc, result.out_of_time = run.best, run.out_of_time
    return result


def weights_metadata(config: TrainConfig, transform: Transform, train_rows: list[dict],
                     model: Sam | BoxUNet | None = None) -> dict:
    """What ``best.pth`` / ``last.pth`` record of themselves (see
    :func:`medsam.checkpoint.with_metadata`): variant, transform, input size, data, and a
    U-Net's architecture."""
    record = {"format": "medsam-weights-1", "variant": config.variant, "transform": transform.name,
              "image_size": int(transform.image_size), "init": str(config.init or "scratch"),
              "trained_on": sorted({str(r["dataset"]) for r in train_rows})}
    if config.prompt_mode == "interactive":
        record["interactive"] = True
    kind = model_kind(config.variant)
    if model is not None and kind.architecture is not None:
        record[kind.name] = kind.architecture(model)
    return record


def _start(config: TrainConfig, resume: bool, overwrite: bool) -> _Run:
    """Check every input, then build the model, optimizer and data of the run."""
    from ..transforms import get_transform

    env = dist_utils.read_env()
    device = dist_utils.device_for(env, config.device)
    folder = _prepare_run_dir(config, resume, overwrite)
    train_rows, tune_rows = select_rows(config)
    transform = get_transform(config.transform or model_kind(config.variant).transform)
    sam = build_initial_model(config)
    if transform.image_size != sam.image_size:
        raise InputError(f"transform {transform.name!r} makes {transform.image_size}-pixel "
                         f"inputs but variant {config.variant!r} takes {sam.image_size}")
    # a run stopped before its first checkpoint resumes from the start
    state = load_resume(folder / RESUME_NAME) if resume and (folder / RESUME_NAME).is_file() else None
    if state is not None:
        sam.load_state_dict(state["model"])
    writer = _tensorboard(folder) if (config.tensorboard and env.is_main) else None
    accum = accumulation_steps(config, env.world_size)
    steps = _steps_per_epoch(config, len(train_rows), env.world_size, accum)

    dist_utils.init(env, device)
    if env.is_main:
        _open_run_dir(config, folder, resume, overwrite, state)
    sam, step_module = _place_model(sam, config, env, device)
    params = [p for p in sam.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(config.betas[0], config.betas[1]),
                                  weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config, steps * config.epochs)
    run = _Run(config=config, env=env, device=device, folder=folder, sam=sam,
               step_module=step_module, optimizer=optimizer, scheduler=scheduler,
               dataset=_dataset(config, train_rows, transform),
               train_rows=train_rows, tune_rows=tune_rows[env.rank::env.world_size],
               transform=transform,
               cache=_embedding_cache(config, sam, transform),
               writer=writer, steps=steps, accum=accum,
               metadata=weights_metadata(config, transform, train_rows, sam))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        run.epoch, run.step = state["epoch"], state["step"]
        run.global_step, run.best = state["global_step"], state["best"]
        run.resumed_stats = dict(state.get("epoch_stats") or {})
        set_rng_state(state["rng"])
    return run


def _embedding_cache(config: TrainConfig, sam: Sam | BoxUNet, transform: Transform) -> EmbeddingCache | None:
    if not config.cache_embeddings:
        return None
    namespace = ""
    if config.embedding_folder:
        from ..segmentation.embedding_store import store_namespace

        namespace = store_namespace(sam, transform, "exact")
    return EmbeddingCache(cast(Sam, sam).image_encoder, config.embedding_folder, namespace)


def _dataset(config: TrainConfig, train_rows: list[dict], transform: Transform) -> PreparedDataset:
    if config.prompt_mode == "interactive":
        from .interactive import InteractiveDataset

        every = [r for r in read_manifest(config.data) if r["split"] == "train"]
        return InteractiveDataset(config.data, train_rows, transform, config.box_shift, config.seed,
                                  config.propagation_fraction, neighbours=every)
    return PreparedDataset(config.data, train_rows, transform, config.box_shift, config.seed)


def _steps_per_epoch(config: TrainConfig, n_rows: int, world_size: int, accum: int) -> int:
    probe = EpochBatchSampler(n_rows, config.batch_size, config.seed, world_size=world_size,
                              accumulation=accum)
    steps = probe.steps if config.max_steps_per_epoch is None \
        else min(probe.steps, config.max_steps_per_epoch)
    if steps < 1:
        raise InputError(f"{n_rows} training objects are fewer than one optimizer step "
                         f"({config.batch_size * world_size * accum} objects)")
    return steps


def _open_run_dir(config: TrainConfig, folder: Path, resume: bool, overwrite: bool,
                  state: dict | None) -> None:
    """Make the run folder. Starting over: remove the earlier run's files. Resuming: cut
    ``steps.csv`` and ``log.csv`` back to the resume state (a run killed after its last
    checkpoint logged steps that will run again; a kill mid-line leaves half a row)."""
    folder.mkdir(parents=True, exist_ok=True)
    if (overwrite and not resume) or (resume and state is None):
        for name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "tensorboard", ignore_errors=True)
    elif state is not None:
        _trim_csv(folder / "steps.csv", STEP_COLUMNS, lambda r: int(r["global_step"]) <= state["global_step"])
        _trim_csv(folder / "log.csv", EPOCH_COLUMNS, lambda r: int(r["epoch"]) < state["epoch"])
    save_config(config, folder / "config.json")


def _trim_csv(path: Path, columns: tuple[str, ...], keep: Callable[[dict], bool]) -> None:
    """Rewrite a log CSV with its complete rows that ``keep`` accepts."""
    from ..fileutil import atomic_path

    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for row in csv.DictReader(f):
            try:
                complete = None not in row and all(row.get(c) not in (None, "") or c == "tune_dsc"
                                                   for c in columns)
                if complete and keep(row):
                    rows.append(row)
            except (KeyError, ValueError):
                continue
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: r[c] for c in columns} for r in rows)


def _place_model(sam: Sam | BoxUNet, config: TrainConfig, env: dist_utils.DistEnv,
                 device: torch.device) -> tuple[Sam | BoxUNet, nn.Module]:
    """Freeze what the paper freezes, move to ``device``, wrap for DDP:
    (the model, the module a training step calls)."""
    interactive = config.prompt_mode == "interactive"
    if model_kind(sam.variant).promptable and not interactive:
        cast(Sam, sam).prompt_encoder.requires_grad_(False)
    if model_kind(sam.variant).promptable:
        if config.freeze_image_encoder:
            cast(Sam, sam).image_encoder.requires_grad_(False)
    sam.to(device)
    if env.distributed and device.type == "cuda" and not config.freeze_bn:
        sam = cast(Sam, nn.SyncBatchNorm.convert_sync_batchnorm(sam))
    set_train_mode(sam, config.freeze_bn, config.freeze_image_encoder)
    step_module: nn.Module
    if interactive:
        from .interactive import InteractiveStep

        step_module = InteractiveStep(cast(Sam, sam), config.click_rounds, config.click_first_fraction)
    else:
        step_module = SegmentationStep(sam, config.freeze_image_encoder)
    if env.distributed:
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)  # the IoU head gets no gradient from this loss
    return sam, step_module


def _train_epoch(run: _Run, epoch: int) -> _EpochStats:
    """The optimizer steps of one epoch (from ``run.step`` when resuming mid-epoch)."""
    from ..progress import progress_bar

    config, env = run.config, run.env
    run.dataset.set_epoch(epoch)
    sampler = EpochBatchSampler(len(run.train_rows), config.batch_size, config.seed, epoch,
                                env.rank, env.world_size, run.accum, start=run.step * run.accum)
    batches = iter(torch.utils.data.DataLoader(run.dataset, batch_sampler=sampler,
                                               num_workers=config.workers))
    bar = progress_bar(total=run.steps, initial=run.step, desc=f"epoch {epoch + 1}/{config.epochs}",
                       unit="step", enabled=config.progress and env.is_main)
    # resumed mid-epoch: the steps before the stop count in the epoch's loss (process 0
    # carries the sums of all processes, which the end of the epoch adds up again)
    carried = run.resumed_stats if (run.step > 0 and env.is_main) else {}
    stats, t0 = _EpochStats(**carried), time.perf_counter()
    run.resumed_stats = {}
    for step in range(run.step, run.steps):
        step_loss = _optimizer_step(run, batches, stats)
        stats.loss_sum, stats.loss_count = stats.loss_sum + step_loss, stats.loss_count + 1
        rate = stats.images / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(loss=f"{step_loss:.4f}", img_s=f"{rate:.2f}")
        bar.update()
        if env.is_main:
            _log_step(run, epoch, step, step_loss)
        if config.save_every and run.global_step % config.save_every == 0 \
                and step + 1 < run.steps:
            _save_checkpoint(run, epoch, step + 1, stats, time.perf_counter() - t0)
        if run.budget_spent() or (config.max_steps is not None and run.global_step >= config.max_steps):
            run.out_of_time = True
            break
    bar.close()
    stats.seconds += time.perf_counter() - t0
    run.step = 0
    return stats


def _optimizer_step(run: _Run, batches: Iterator[dict], stats: _EpochStats) -> float:
    """``run.accum`` micro-batches, then one optimizer step; returns the step's loss."""
    run.optimizer.zero_grad(set_to_none=True)
    step_loss = 0.0
    for micro in range(run.accum):
        batch = next(batches)
        sync = contextlib.nullcontext()
        if run.env.distributed and micro < run.accum - 1:
            sync = run.step_module.no_sync()
        with sync:
            if run.config.prompt_mode == "interactive":
                loss = _interactive_loss(run, batch, micro) / run.accum
                loss.backward()
                step_loss += float(loss.detach())
                stats.images += len(batch["index"]) * run.env.world_size
                continue
            with autocast_context(run.config.precision, run.device):
                images = batch["image"].to(run.device)
                embeddings = None
                if run.cache is not None:
                    files = [run.train_rows[int(i)]["file"] for i in batch["index"]]
                    embeddings = run.cache.get(files, images)
                logits = run.step_module(images, batch["box"].to(run.device),
                                         embeddings=embeddings)
            loss = dice_bce_loss(logits, batch["mask"].to(run.device)) / run.accum
            loss.backward()
        step_loss += float(loss.detach())
        stats.images += len(batch["index"]) * run.env.world_size
    run.optimizer.step()
    run.scheduler.step()
    run.global_step += 1
    return step_loss


def _interactive_loss(run: _Run, batch: dict, micro: int) -> torch.Tensor:
    """One micro-batch's loss in interactive mode: the embeddings at full precision (as
    inference computes them), the rounds under the run's precision."""
    images = batch["image"].to(run.device)
    with torch.no_grad():
        if run.cache is not None:
            embeddings = run.cache.get([run.train_rows[int(i)]["file"] for i in batch["index"]], images)
        else:
            embeddings = cast(Sam, run.sam).image_encoder(images)
    seed = [run.config.seed, run.global_step, run.env.rank, micro]
    with autocast_context(run.config.precision, run.device):
        return cast(torch.Tensor, run.step_module(
            embeddings, batch["box"].to(run.device), batch["mask"].to(run.device),
            batch["prior"].to(run.device), batch["has_prior"].to(run.device), seed))


def _log_step(run: _Run, epoch: int, step: int, loss: float) -> None:
    _append_csv(run.folder / "steps.csv", STEP_COLUMNS, {
        "epoch": epoch, "step": step, "global_step": run.global_step, "loss": loss,
        "lr": run.optimizer.param_groups[0]["lr"]})
    if run.writer is not None:
        run.writer.add_scalar("train/loss", loss, run.global_step)


def _end_epoch(run: _Run, epoch: int, stats: _EpochStats) -> dict:
    """Tuning DSC (summed over ranks), best.pth when it improved, the checkpoint, the
    epoch's row of ``log.csv``."""
    config = run.config
    if config.prompt_mode == "interactive":
        from .interactive import tune_interactive

        dsc_sum, dsc_count = tune_interactive(cast(Sam, run.sam), run.transform, Path(config.data),
                                              run.tune_rows, run.device, cache=run.cache)
    else:
        dsc_sum, dsc_count = tune_dice(run.sam, run.transform, Path(config.data), run.tune_rows,
                                       run.device, cache=run.cache)
    loss_total, loss_n, total, count = dist_utils.all_sum(
        [stats.loss_sum, stats.loss_count, dsc_sum, dsc_count], run.device)
    set_train_mode(run.sam, config.freeze_bn, config.freeze_image_encoder)
    dsc = total / count if count else None
    if dsc is not None and (run.best is None or dsc > run.best):
        run.best = dsc
        if run.env.is_main:
            save_weights(run.sam, run.folder / "best.pth", run.metadata)
    row = {"epoch": epoch, "global_step": run.global_step,
           "train_loss": loss_total / max(loss_n, 1), "tune_dsc": dsc,
           "lr": run.optimizer.param_groups[0]["lr"], "images_per_s": stats.images / stats.seconds,
           "seconds": stats.seconds}
    _save_checkpoint(run, epoch + 1, 0)
    if run.env.is_main:
        _append_csv(run.folder / "log.csv", EPOCH_COLUMNS, row)
        if run.writer is not None:
            run.writer.add_scalar("train/epoch_loss", row["train_loss"], epoch)
            if dsc is not None:
                run.writer.add_scalar("tune/dsc", dsc, epoch)
    dist_utils.barrier()
    return row


def _save_checkpoint(run: _Run, epoch: int, step: int, stats: _EpochStats | None = None,
                     elapsed: float = 0.0) -> None:
    """last.pth and the resume state; ``epoch``/``step``: the next step to run; ``stats``:
    the epoch's statistics so far (mid-epoch), summed over processes into the state."""
    carried = None
    if stats is not None:
        loss_sum, loss_count, images = dist_utils.all_sum(
            [stats.loss_sum, stats.loss_count, stats.images], run.device)
        carried = {"loss_sum": loss_sum, "loss_count": int(loss_count), "images": int(images),
                   "seconds": stats.seconds + elapsed}
    if run.env.is_main:
        from ..fileutil import committed_together

        with committed_together():   # the weights and the resume state: both, or the old pair
            save_weights(run.sam, run.folder / "last.pth", run.metadata)
            save_resume(run.folder / RESUME_NAME, run.sam, run.optimizer, run.scheduler, epoch, step,
                        run.global_step, run.best, config_dict(run.config), carried)
