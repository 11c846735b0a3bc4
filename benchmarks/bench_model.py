"""Benchmark: image-encoder and mask-decoder speed and peak memory, ours vs Meta's reference.

    python benchmarks/bench_model.py --variant vit_b --device cpu --runs 5 --boxes 16

Prints, for the chosen variant (random weights, the same for both models):
* median seconds of one image embedding (1 x 3 x S x S) for ``medsam.build_model``
  and for the reference ``segment_anything`` model, measured alternately in the same
  run, and their ratio (ours / reference); for ``lite`` (no reference encoder: Meta's
  package has no TinyViT) ours in exact and in bf16 precision;
* the decoder's time per box (prompt encoder + mask decoder), for one box and for
  ``--boxes`` boxes: ours in the predictor's batches (``CPU_DECODE_BATCH`` on a CPU),
  the reference's in one batch as ``SamPredictor.predict_torch`` does (for ``lite`` the
  reference is Meta's prompt encoder and mask decoder holding LiteMedSAM's decoder);
* mask agreement with the reference (Dice per box of the masks, logits > 0) for ours at
  exact and at bf16 precision, the accuracy guard where no real weights can be had;
* MedSAM preprocessing time (resize to 1024 etc.) of a 512 x 512 grey image, and of
  ``skimage.transform.resize`` (what MedSAM runs) in the same run, with the largest
  difference;
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
import types
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
    from reference_sam import load_reference

    modeling, build_sam = load_reference()
    if variant == "lite":  # the same decoder as SAM's, on a 64 x 64 embedding of a 256 input
        reference = types.SimpleNamespace(
            image_encoder=None,
            prompt_encoder=modeling.PromptEncoder(embed_dim=256, image_embedding_size=(64, 64),
                                                  input_image_size=(256, 256), mask_in_chans=16),
            mask_decoder=modeling.MaskDecoder(
                num_multimask_outputs=3, transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
                transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048,
                                                       num_heads=8)))
        for part in ("prompt_encoder", "mask_decoder"):
            getattr(reference, part).load_state_dict(getattr(ours, part).state_dict())
            getattr(reference, part).to(device).eval()
        return ours, reference
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


def decode_fn(model, embedding, boxes, batch):
    """Decode ``boxes`` ``batch`` at a time (``decode_prompts`` takes Meta's model too)."""
    from medsam.modeling.sam import decode_prompts

    def run():
        for start in range(0, len(boxes), batch):
            decode_prompts(model, embedding, boxes=boxes[start:start + batch])
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


def time_alternately(jobs: dict, device, warmup: int, runs: int) -> dict:
    """Median seconds of each named job, the jobs run in turn (order reversed every other
    round) so that a change of machine load hits all of them alike."""
    times: dict = {name: [] for name in jobs}
    for i in range(warmup + runs):
        for name in (list(jobs) if i % 2 == 0 else list(reversed(jobs))):
            seconds = timed(jobs[name], device)
            if i >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def preprocessing_times(runs: int) -> dict:
    """MedSAM's resize of a 512 x 512 grey image: ours and skimage's (if installed)."""
    import numpy as np
    import torch

    from medsam.transforms import MedSAMTransform, spline_resize

    cpu = torch.device("cpu")
    grey = np.random.default_rng(0).integers(0, 256, (512, 512, 1)).astype(np.uint8)
    image = np.repeat(grey, 3, axis=2)
    transform = MedSAMTransform()
    jobs = {"ours": lambda: transform.prepare_image(image)}
    try:
        from skimage.transform import resize
    except ImportError:
        resize = None
    if resize is not None:
        jobs["skimage"] = lambda: resize(image, (1024, 1024), order=3, preserve_range=True,
                                         anti_aliasing=True)
    out = {f"preprocess_512_{k}_s": v for k, v in time_alternately(jobs, cpu, 1, runs).items()}
    if resize is not None:
        expected = resize(image, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True)
        out["preprocess_max_abs_difference"] = float(np.abs(spline_resize(image, (1024, 1024))
                                                           - expected).max())
    return out


def mask_agreement(ours, reference, x, boxes, device) -> dict:
    """Per-box Dice between our masks (low-resolution logits > 0) and the reference's,
    ours at exact and at bf16 precision: the accuracy guard where no real weights can be
    had (for ``lite`` the reference has our encoder's embedding and Meta's decoder)."""
    import numpy as np
    import torch

    from medsam.evaluation.agreement import label_agreement
    from medsam.modeling.sam import decode_prompts
    from medsam.precision import precision_context

    out = {}
    with torch.inference_mode():
        if reference.image_encoder is not None:
            ref_embedding = reference.image_encoder(x)
        else:
            ref_embedding = ours.image_encoder(x)
        expected = decode_prompts(reference, ref_embedding, boxes=boxes)[0] > 0
        for precision in ("exact", "bf16"):
            with precision_context(precision, device):
                logits = decode_prompts(ours, ours.image_encoder(x).float(), boxes=boxes)[0].float()
            agreement = [label_agreement(a, b) for a, b in zip((logits > 0).cpu().numpy(),
                                                               expected.cpu().numpy())]
            out[f"{precision}_agreement_min"] = float(np.min(agreement))
            out[f"{precision}_agreement_median"] = float(np.median(agreement))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return 0

    from medsam.devices import resolve_device
    from medsam.precision import native_bf16, precision_context
    from medsam.predictor import CPU_DECODE_BATCH

    device = resolve_device(args.device)
    load_before = os.getloadavg()
    names = ["ours"] if args.variant == "lite" else ["ours", "reference"]
    cpu_memory = {name: cpu_peak_memory(args, name) for name in names} \
        if device.type == "cpu" else {}
    ours, reference = build_models(args.variant, device)
    size = image_size(ours)
    torch.manual_seed(1)
    x = torch.rand(1, 3, size, size, device=device)
    boxes = torch.rand(args.boxes, 4, device=device) * (size / 2)
    boxes[:, 2:] += boxes[:, :2]
    batch = CPU_DECODE_BATCH if device.type == "cpu" else 64

    def bf16_embed():
        with precision_context("bf16", device):
            ours.image_encoder(x)

    results: dict = {"variant": args.variant, "device": str(device), "runs": args.runs,
                     "boxes": args.boxes, "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "native_bf16": native_bf16(device)}
    with torch.inference_mode():
        embedding = ours.image_encoder(x)
        embed_jobs = {"ours": embed_fn(ours, x), "ours_bf16": bf16_embed}
        if reference.image_encoder is not None:
            embed_jobs["reference"] = embed_fn(reference, x)
            results["max_abs_embedding_difference"] = float(
                (embedding - reference.image_encoder(x)).abs().max())
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            ours.image_encoder(x)
            results["ours_peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        for name, seconds in time_alternately(embed_jobs, device, args.warmup, args.runs).items():
            results[f"{name}_embed_s"] = seconds
        decode_jobs = {"ours_1": decode_fn(ours, embedding, boxes[:1], batch),
                       "reference_1": decode_fn(reference, embedding, boxes[:1], 1),
                       f"ours_{args.boxes}": decode_fn(ours, embedding, boxes, batch),
                       f"reference_{args.boxes}": decode_fn(reference, embedding, boxes, args.boxes)}
        for name, seconds in time_alternately(decode_jobs, device, args.warmup, args.runs).items():
            results[f"{name}_decode_per_box_ms"] = 1000 * seconds / int(name.rsplit("_", 1)[1])
    results.update(preprocessing_times(max(3, args.runs)))
    results.update(mask_agreement(ours, reference, x, boxes, device))
    if device.type == "cpu":
        for name in names:
            results[f"{name}_peak_rss_mib"] = cpu_memory[name]["peak_rss_mib"]
            results[f"{name}_embedding_rss_increase_mib"] = cpu_memory[name]["embedding_rss_increase_mib"]
    results["loadavg_before"] = [round(v, 2) for v in load_before]
    results["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    print_results(results, args)
    return 0


def print_results(r: dict, args) -> None:
    print(f"variant {args.variant} on {r['device']} (torch {r['torch']}, {r['threads']} threads, "
          f"native bf16: {r['native_bf16']}), {args.runs} runs after {args.warmup} warm-up; "
          f"load average before {r['loadavg_before']}, after {r['loadavg_after']}")
    line = f"  embedding: ours {r['ours_embed_s']:.3f} s, bf16 {r['ours_bf16_embed_s']:.3f} s"
    if "reference_embed_s" in r:
        line += (f", reference {r['reference_embed_s']:.3f} s; ours / reference "
                 f"{r['ours_embed_s'] / r['reference_embed_s']:.3f} (max |difference| "
                 f"{r['max_abs_embedding_difference']:.1e})")
    print(line)
    for n in (1, args.boxes):
        ours, ref = r[f"ours_{n}_decode_per_box_ms"], r[f"reference_{n}_decode_per_box_ms"]
        print(f"  decoder, {n} box(es): ours {ours:.1f} ms/box, reference {ref:.1f} ms/box; "
              f"ours / reference {ours / ref:.2f}")
    line = f"  MedSAM preprocessing 512x512: ours {r['preprocess_512_ours_s'] * 1000:.1f} ms"
    if "preprocess_512_skimage_s" in r:
        line += (f", skimage {r['preprocess_512_skimage_s']:.3f} s; max |difference| of the resize "
                 f"{r['preprocess_max_abs_difference']:.1e}")
    print(line)
    print(f"  mask agreement with the reference ({args.boxes} boxes, Dice per box, min / median): exact "
          f"{100 * r['exact_agreement_min']:.2f} / {100 * r['exact_agreement_median']:.2f} %, bf16 "
          f"{100 * r['bf16_agreement_min']:.2f} / {100 * r['bf16_agreement_median']:.2f} % (guard: 99.5 %)")
    for name in ("ours", "reference"):
        if f"{name}_peak_rss_mib" in r:
            print(f"  {name}: peak RSS {r[f'{name}_peak_rss_mib']:.0f} MiB (embedding "
                  f"+{r[f'{name}_embedding_rss_increase_mib']:.0f} MiB)")
        if f"{name}_peak_cuda_mib" in r:
            print(f"  {name}: peak CUDA {r[f'{name}_peak_cuda_mib']:.0f} MiB")
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    raise SystemExit(main())
