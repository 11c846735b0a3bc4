"""Benchmark: image-encoder and mask-decoder speed and peak memory, ours vs Meta's reference.

    python benchmarks/bench_model.py --variant vit_b --device cpu --runs 5 --boxes 16

Prints, for the chosen variant (random weights, the same for both models):
* median seconds of one image embedding (1 x 3 x S x S) for ``medsam.build_model``
  and for the reference ``segment_anything`` model, measured alternately in the same
  run, and their ratio (ours / reference);
* the decoder's time per box (prompt encoder + mask decoder, all boxes in one batch);
* MedSAM preprocessing time (resize to 1024 etc.) of a 512 x 512 image;
* peak memory of one embedding: ``torch.cuda.max_memory_allocated`` on CUDA, or on
  CPU the peak resident set size of a fresh child process that builds the model and
  embeds one image (and how much the embedding added to it);
* the load average, since other processes may share the CPU.

The reference exists for the ViTs only; for ``lite`` only our model is timed.
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
sys.path.insert(0, str(ROOT / "tests"))  # reference_sam loader


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="vit_b", choices=["vit_b", "vit_l", "vit_h", "lite"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument("--runs", type=int, default=5, help="timed runs per model (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--boxes", type=int, default=16, help="boxes decoded in one batch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    p.add_argument("--memory-child", choices=["ours", "reference"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_models(variant: str, device):
    """(ours, reference or None), with the reference holding our weights."""
    import torch

    import medsam

    torch.manual_seed(0)
    ours = medsam.build_model(variant).to(device).eval()
    if variant == "lite":
        return ours, None
    from reference_sam import load_reference

    _, build_sam = load_reference()
    reference = build_sam.sam_model_registry[variant](checkpoint=None)
    reference.load_state_dict(ours.state_dict())
    return ours, reference.to(device).eval()


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def embed_fn(model, x):
    def run():
        model.image_encoder(x)
    return run


def decode_fn(model, embedding, boxes):
    def run():
        sparse, dense = model.prompt_encoder(points=None, boxes=boxes, masks=None)
        model.mask_decoder(image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
                           sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                           multimask_output=False)
    return run


def image_size(model) -> int:
    return int(getattr(model, "image_size", None) or model.image_encoder.img_size)


def peak_rss_mib() -> float:
    """Peak resident set size of this process: ``VmHWM`` on Linux (it starts afresh at
    exec, unlike ``ru_maxrss``, which keeps the parent's peak at fork), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def memory_child(args) -> None:
    """Run one embedding of one model in this (fresh) process and print its peak memory."""
    import torch

    from medsam.devices import resolve_device

    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.memory_child == "ours":
        import medsam

        model = medsam.build_model(args.variant)
    else:
        from reference_sam import load_reference

        model = load_reference()[1].sam_model_registry[args.variant](checkpoint=None)
    model = model.to(device).eval()
    size = image_size(model)
    x = torch.rand(1, 3, size, size, device=device)
    before = peak_rss_mib()
    with torch.inference_mode():
        model.image_encoder(x)
    peak = peak_rss_mib()
    print(json.dumps({"peak_rss_mib": peak, "embedding_rss_increase_mib": peak - before}))


def cpu_peak_memory(args, which: str) -> dict:
    cmd = [sys.executable, __file__, "--variant", args.variant, "--device", args.device,
           "--memory-child", which]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return 0

    from medsam.devices import resolve_device
    from medsam.transforms import MedSAMTransform

    device = resolve_device(args.device)
    load_before = os.getloadavg()
    names = ["ours"] if args.variant == "lite" else ["ours", "reference"]
    cpu_memory = {name: cpu_peak_memory(args, name) for name in names} \
        if device.type == "cpu" else {}
    ours, reference = build_models(args.variant, device)
    models = {"ours": ours} if reference is None else {"ours": ours, "reference": reference}
    size = image_size(ours)
    torch.manual_seed(1)
    x = torch.rand(1, 3, size, size, device=device)
    boxes = torch.rand(args.boxes, 4, device=device) * (size / 2)
    boxes[:, 2:] += boxes[:, :2]

    results: dict = {"variant": args.variant, "device": str(device), "runs": args.runs,
                     "boxes": args.boxes, "threads": torch.get_num_threads(),
                     "torch": torch.__version__}
    with torch.inference_mode():
        embeddings = {name: m.image_encoder(x) for name, m in models.items()}
        if reference is not None:
            results["max_abs_embedding_difference"] = float(
                (embeddings["ours"] - embeddings["reference"]).abs().max())
        embed_times = {name: [] for name in models}
        decode_times = {name: [] for name in models}
        if device.type == "cuda":
            peak = {}
        for i in range(args.warmup + args.runs):
            order = list(models) if i % 2 == 0 else list(reversed(models))
            for name in order:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                t_embed = timed(embed_fn(models[name], x), device)
                if device.type == "cuda":
                    peak[name] = torch.cuda.max_memory_allocated(device) / 2**20
                t_decode = timed(decode_fn(models[name], embeddings[name], boxes), device)
                if i >= args.warmup:
                    embed_times[name].append(t_embed)
                    decode_times[name].append(t_decode)

    transform = MedSAMTransform()
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3)).astype(np.uint8)
    prep = [timed(lambda: transform.prepare_image(image), torch.device("cpu")) for _ in range(3)]

    for name in models:
        results[f"{name}_embed_s"] = statistics.median(embed_times[name])
        results[f"{name}_decode_per_box_ms"] = 1000 * statistics.median(decode_times[name]) / args.boxes
        if device.type == "cuda":
            results[f"{name}_peak_cuda_mib"] = peak[name]
        elif device.type == "cpu":
            results[f"{name}_peak_rss_mib"] = cpu_memory[name]["peak_rss_mib"]
            results[f"{name}_embedding_rss_increase_mib"] = \
                cpu_memory[name]["embedding_rss_increase_mib"]
    if reference is not None:
        results["embed_ratio_ours_over_reference"] = results["ours_embed_s"] / results["reference_embed_s"]
    results["medsam_preprocess_512_s"] = statistics.median(prep)
    results["loadavg_before"] = [round(v, 2) for v in load_before]
    results["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]

    print(f"variant {args.variant} on {device} (torch {torch.__version__}, "
          f"{results['threads']} threads), {args.runs} runs after {args.warmup} warm-up")
    for name in models:
        line = (f"  {name:9s}  embedding {results[f'{name}_embed_s']:.3f} s (median)   "
                f"decoder {results[f'{name}_decode_per_box_ms']:.2f} ms/box ({args.boxes} boxes)")
        if f"{name}_peak_cuda_mib" in results:
            line += f"   peak CUDA {results[f'{name}_peak_cuda_mib']:.0f} MiB"
        if f"{name}_peak_rss_mib" in results:
            line += (f"   peak RSS {results[f'{name}_peak_rss_mib']:.0f} MiB (embedding "
                     f"+{results[f'{name}_embedding_rss_increase_mib']:.0f})")
        print(line)
    if reference is not None:
        print(f"  ratio ours / reference (embedding): {results['embed_ratio_ours_over_reference']:.3f}"
              f"   max |embedding difference|: {results['max_abs_embedding_difference']:.2e}")
    print(f"  MedSAM preprocessing of a 512x512 image: {results['medsam_preprocess_512_s']:.3f} s")
    print(f"  load average before {results['loadavg_before']}, after {results['loadavg_after']}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
