"""Benchmark: training throughput (images/s) and peak memory of `medsam train`'s step.

    python benchmarks/bench_train.py --variants lite vit_b --batches 1 2 4 8 --steps 2

For every (variant, batch) a fresh child process builds the model (random weights),
freezes the prompt encoder as training does, and runs ``--warmup`` + ``--steps``
optimizer steps (forward, Dice + BCE, backward, AdamW) on random images of the
model's input size with random boxes and masks. It reports the median images/s of
the timed steps and the child's peak resident memory (``ru_maxrss``; on CUDA
``torch.cuda.max_memory_allocated``). Data loading is not included.
The load average is printed, since other processes may share the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["lite", "vit_b"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=2, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "BATCH"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(variant: str, batch: int, args: argparse.Namespace) -> dict:
    import resource

    import torch

    from medsam.modeling import build_model
    from medsam.training.losses import dice_bce_loss
    from medsam.training.step import SegmentationStep, autocast_context, set_train_mode

    device = torch.device(args.device)
    torch.manual_seed(0)
    sam = build_model(variant).to(device)
    sam.prompt_encoder.requires_grad_(False)
    set_train_mode(sam, freeze_bn=False)
    step = SegmentationStep(sam)
    opt = torch.optim.AdamW([p for p in sam.parameters() if p.requires_grad], lr=1e-4,
                            weight_decay=0.01)
    s = sam.image_size
    x = torch.rand(batch, 3, s, s, device=device)
    boxes = torch.tensor([[s * 0.2, s * 0.2, s * 0.7, s * 0.8]] * batch, device=device)
    masks = (torch.rand(batch, 1, 256, 256, device=device) > 0.5).float()
    times = []
    for i in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast_context(args.precision, device):
            logits = step(x, boxes)
        dice_bce_loss(logits, masks).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    sec = statistics.median(times)
    return {"variant": variant, "batch": batch, "seconds_per_step": sec,
            "images_per_s": batch / sec, "peak_memory_gib": peak / 2**30,
            "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)))
        return 0
    print(f"load average before: {os.getloadavg()}")
    print(f"{'variant':8} {'batch':>5} {'s/step':>9} {'images/s':>9} {'peak GiB':>9}")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    for variant in args.variants:
        for batch in args.batches:
            cmd = [sys.executable, __file__, "--child", variant, str(batch), "--steps",
                   str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
                   "--precision", args.precision]
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                print(f"{variant:8} {batch:5d} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{variant:8} {batch:5d} {r['seconds_per_step']:9.2f} "
                  f"{r['images_per_s']:9.3f} {r['peak_memory_gib']:9.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
