"""The exported ONNX graphs in ONNX Runtime against medsam's own PyTorch path, on the same
real images, timed in the same run (LiteMedSAM by default).

    python benchmarks/bench_onnx.py [--weights lite_medsam] [--images 8] [--runs 5] [--threads 0]

Prints medians of the image encoder (one embedding), the prompt decoder (one box), the
whole image (encoder + decoder + pre/post-processing) for both, their ratios, and the
per-image agreement of the masks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="lite_medsam")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    args = parser.parse_args()

    import onnxruntime as ort
    import torch
    from PIL import Image

    from medsam import io, load_model
    from medsam.export import export_onnx
    from medsam.modeling.sam import decode_prompts
    from medsam.predictor import MedSAMPredictor
    from medsam.segmentation import mask_to_box
    from medsam.transforms import get_transform

    model = load_model(args.weights, device="cpu")
    transform = get_transform(model.info.transform)
    predictor = MedSAMPredictor(model)
    options = ort.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        files = export_onnx(model, Path(tmp) / "graphs")
        encoder = ort.InferenceSession(str(files["image_encoder"]), options)
        decoder = ort.InferenceSession(str(files["prompt_decoder"]), options)
    masks = sorted((SHARED / "isic_ham10000_skin/masks").iterdir())[: args.images]
    rows = {"encoder": [], "decoder": [], "image": []}
    agreement = []
    for mask_path in masks:
        image_path = next((SHARED / "isic_ham10000_skin/images").glob(mask_path.stem + ".*"))
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        box = mask_to_box(io.read(mask_path)[0] > 0)
        prepared = transform.prepare_image(rgb)
        x = prepared.tensor[None]
        boxes = transform.apply_boxes(box[None], prepared.original_size).astype(np.float32)
        embeddings = encoder.run(None, {"image": x})[0]
        with torch.inference_mode():
            ours_enc = _median_time(lambda: model.image_encoder(torch.from_numpy(x)), args.runs)
        onnx_enc = _median_time(lambda: encoder.run(None, {"image": x}), args.runs)
        feed = {"embeddings": embeddings, "boxes": boxes}
        onnx_dec = _median_time(lambda: decoder.run(None, feed), args.runs)
        e_t, b_t = torch.from_numpy(embeddings), torch.from_numpy(boxes)
        with torch.inference_mode():
            ours_dec = _median_time(lambda: decode_prompts(model, e_t, boxes=b_t), args.runs)

        def onnx_image():
            p = transform.prepare_image(rgb)
            e = encoder.run(None, {"image": p.tensor[None]})[0]
            logits = decoder.run(None, {"embeddings": e, "boxes": boxes})[0]
            return transform.postprocess(torch.from_numpy(logits), p.original_size, p.input_size)[0, 0].numpy()

        def ours_image():
            predictor.set_image(rgb)
            return predictor.predict(box)[0][0]

        rows["encoder"].append((ours_enc, onnx_enc))
        rows["decoder"].append((ours_dec, onnx_dec))
        rows["image"].append((_median_time(ours_image, args.runs), _median_time(onnx_image, args.runs)))
        agreement.append(float((ours_image() == onnx_image()).mean()))
    print(f"{args.weights} on {len(masks)} ISIC images (n = {len(masks)}), median of {args.runs} runs each, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}")
    print(f"{'step':<10} {'medsam (torch) s':>17} {'ONNX Runtime s':>15} {'ratio ort/torch':>16}")
    for name, pairs in rows.items():
        ours = statistics.median(p[0] for p in pairs)
        onnx = statistics.median(p[1] for p in pairs)
        print(f"{name:<10} {ours:>17.4f} {onnx:>15.4f} {onnx / ours:>16.2f}")
    print(f"mask agreement per image: min {min(agreement):.4%}, median {statistics.median(agreement):.4%}")


if __name__ == "__main__":
    main()
