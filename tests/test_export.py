"""ONNX export: `medsam export --format onnx` of the real LiteMedSAM, run in ONNX Runtime on
real images, gives medsam's masks (the exact pipeline, and the README's example that has
neither torch nor medsam); any number of boxes; a random-weight ViT-B gives the same
outputs as ours; an existing output folder is refused."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from medsam import io
from medsam.errors import InputError
from medsam.export import export_onnx
from medsam.modeling.registry import build_model
from medsam.modeling.sam import decode_prompts
from medsam.predictor import MedSAMPredictor
from medsam.segmentation import mask_to_box
from medsam.transforms import get_transform

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: the precision guard's per-image agreement (docs/performance.md)
AGREEMENT = 0.995


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, lite_medsam_checkpoint):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("export") / "lite_medsam_onnx"
    done = run_cli("export", "--format", "onnx", "-o", out, "--checkpoint", lite_medsam_checkpoint)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["image_encoder.onnx", "preprocessing.json",
                                                      "prompt_decoder.onnx"]
    return out


@pytest.fixture(scope="module")
def cases(shared_data):
    """RGB photos with boxes from their reference masks: dermoscopy, endoscopy."""
    out = []
    for folder, n in (("isic_ham10000_skin", 3), ("kvasir_seg_subset", 3)):
        for mask in sorted((shared_data / folder / "masks").iterdir())[:n]:
            image = next((shared_data / folder / "images").glob(mask.stem + ".*"))
            out.append((image, np.asarray(Image.open(image).convert("RGB")), mask_to_box(io.read(mask)[0] > 0)))
    return out


def test_onnx_runtime_gives_our_masks_on_real_images(graphs, cases, lite_medsam_model):
    encoder = ort.InferenceSession(str(graphs / "image_encoder.onnx"))
    decoder = ort.InferenceSession(str(graphs / "prompt_decoder.onnx"))
    transform = get_transform("litemedsam")
    predictor = MedSAMPredictor(lite_medsam_model)
    for path, rgb, box in cases:
        prepared = transform.prepare_image(rgb)
        embeddings = encoder.run(None, {"image": prepared.tensor[None]})[0]
        with torch.inference_mode():
            ours = lite_medsam_model.image_encoder(torch.from_numpy(prepared.tensor[None])).numpy()
        np.testing.assert_allclose(embeddings, ours, atol=1e-3)
        boxes = transform.apply_boxes(box[None], prepared.original_size).astype(np.float32)
        logits = decoder.run(None, {"embeddings": embeddings, "boxes": boxes})[0]
        masks = transform.postprocess(torch.from_numpy(logits), prepared.original_size, prepared.input_size)
        predictor.set_image(rgb)
        expected = predictor.predict(box)[0][0]
        assert (masks[0, 0].numpy() == expected).mean() >= AGREEMENT, path.name
        assert expected.sum() > 1000


def test_the_decoder_takes_any_number_of_boxes(graphs, lite_medsam_model):
    decoder = ort.InferenceSession(str(graphs / "prompt_decoder.onnx"))
    embeddings = torch.randn(1, 256, 64, 64)
    for n in (1, 3, 7):
        boxes = torch.tensor([[10.0 + i, 20.0, 120.0 + 5 * i, 200.0] for i in range(n)])
        logits, iou = decoder.run(None, {"embeddings": embeddings.numpy(), "boxes": boxes.numpy()})
        with torch.inference_mode():
            ours_logits, ours_iou = decode_prompts(lite_medsam_model, embeddings, boxes=boxes)
        assert logits.shape == (n, 1, 256, 256) and iou.shape == (n, 1)
        np.testing.assert_allclose(logits, ours_logits.numpy(), atol=1e-3)
        np.testing.assert_allclose(iou, ours_iou.numpy(), atol=1e-4)


def test_preprocessing_json_states_the_steps(graphs):
    described = json.loads((graphs / "preprocessing.json").read_text())
    assert {k: described[k] for k in ("variant", "transform", "image_size", "opset")} == \
        {"variant": "lite", "transform": "litemedsam", "image_size": 256, "opset": 17}
    assert described["inputs"] == {"image": [1, 3, 256, 256], "boxes": ["N", 4]}
    assert "INTER_AREA" in described["steps"]["resize"] and "floored" in described["steps"]["boxes"]


def test_the_readme_example_needs_neither_torch_nor_medsam(graphs, cases, lite_medsam_model, tmp_path):
    """examples/onnx_segment.py (the README's lines), run as a user runs it, with a check
    that it imported neither torch nor medsam."""
    predictor = MedSAMPredictor(lite_medsam_model)
    script = ROOT / "examples/onnx_segment.py"
    for path, rgb, box in cases:
        out = tmp_path / f"{path.stem}.png"
        code = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
                "assert not {'torch', 'medsam'} & set(sys.modules), 'imported torch or medsam'")
        done = subprocess.run([sys.executable, "-c", code, str(script), str(graphs), str(path),
                               ",".join(str(int(v)) for v in box), str(out)], capture_output=True, text=True,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        predictor.set_image(rgb)
        expected = predictor.predict(box)[0][0]
        assert ((np.asarray(Image.open(out)) > 0) == expected).mean() >= AGREEMENT, path.name


def test_a_random_vit_b_exports_with_the_same_outputs(tmp_path, random_vit_b):
    model = random_vit_b
    files = export_onnx(model, tmp_path / "vit_b")
    image = torch.rand(1, 3, 1024, 1024)
    with torch.inference_mode():
        embeddings = model.image_encoder(image)
        boxes = torch.tensor([[100.0, 120.0, 600.0, 700.0], [10.0, 10.0, 1000.0, 900.0]])
        logits, _ = decode_prompts(model, embeddings, boxes=boxes)
    got = ort.InferenceSession(str(files["image_encoder"])).run(None, {"image": image.numpy()})[0]
    np.testing.assert_allclose(got, embeddings.numpy(), atol=1e-3)
    decoded = ort.InferenceSession(str(files["prompt_decoder"])).run(
        None, {"embeddings": embeddings.numpy(), "boxes": boxes.numpy()})[0]
    np.testing.assert_allclose(decoded, logits.numpy(), atol=1e-3)
    assert json.loads(files["preprocessing"].read_text())["transform"] == "medsam"


def test_an_existing_folder_is_refused_and_kept(cli, graphs, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("a user's file")
    done = cli("export", "--format", "onnx", "-o", target)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"{target}: output exists; pass --overwrite to replace it" in done.stderr
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_a_u_net_is_not_exported(tmp_path):
    with pytest.raises(InputError, match="ONNX export covers the promptable SAM-family models; this is a BoxUNet"):
        export_onnx(build_model("unet"), tmp_path / "unet")
    assert not (tmp_path / "unet").exists()


def test_the_readme_shows_the_example_as_it_is():
    code = (ROOT / "examples/onnx_segment.py").read_text()
    assert code[code.index("import sys"):] in (ROOT / "README.md").read_text()
