import dataclasses
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from medsam.devices import resolve_device
from medsam.errors import InputError
from medsam.predictor import MedSAMPredictor

from reference_sam import load_reference

IMAGE = "busi_breast_us/images/10018.png"
MASK = "busi_breast_us/masks/10018.png"


def small_reference_sam(image_size: int = 1024, seed: int = 0):
    """Meta's reference Sam with a small ViT encoder (2 blocks) and random weights:
    the real prompt encoder and mask decoder, fast enough for unit tests. With
    ``image_size=256`` (patch 4) it has LiteMedSAM's input and embedding sizes."""
    modeling, _ = load_reference()
    torch.manual_seed(seed)
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=image_size, patch_size=image_size // 64, embed_dim=64, depth=2,
            num_heads=2, mlp_ratio=2.0, out_chans=256, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=14, global_attn_indexes=(1,)),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=256, image_embedding_size=(64, 64),
            input_image_size=(image_size, image_size), mask_in_chans=16),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048,
                                                   num_heads=8),
            transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def box_from_mask(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


@pytest.fixture(scope="module")
def case(shared_data):
    image = np.asarray(Image.open(shared_data / IMAGE))
    mask = np.asarray(Image.open(shared_data / MASK))
    mask = (mask if mask.ndim == 2 else mask[..., 0]) > 127
    return image, box_from_mask(mask)


@pytest.fixture(scope="module")
def vit():
    return small_reference_sam(1024)


@pytest.fixture(scope="module")
def lite():
    return small_reference_sam(256)


@pytest.fixture(scope="module")
def predictor(vit, case):
    p = MedSAMPredictor(vit, transform="medsam")
    p.set_image(case[0])
    return p


def test_equals_medsam_published_pipeline(vit, case, predictor):
    """MedSAM_Inference.py, step by step, on a real image."""
    image, box = case
    H, W = image.shape[:2]
    expected, low_res_logits, iou, embedding = medsam_published_masks(vit, image, [box])
    expected = expected[0]

    assert torch.equal(predictor.get_image_embedding(), embedding)
    masks, scores, logits = predictor.predict(boxes=box)
    assert masks.shape == (1, H, W) and masks.dtype == bool
    assert scores.shape == (1,) and logits.shape == (1, 1, 256, 256)
    assert 0 < expected.sum() < expected.size  # a non-trivial mask
    np.testing.assert_array_equal(masks[0], expected)
    np.testing.assert_allclose(logits, low_res_logits, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, iou[:, 0], rtol=0, atol=1e-6)


def test_equals_litemedsam_published_pipeline(lite, case):
    """CVPR24_LiteMedSAM_infer.py, step by step, on a real image."""
    cv2 = pytest.importorskip(
        "cv2", reason="opencv-python-headless is a test dependency (pip install -e '.[test]')")
    image, box = case
    img_3c = np.repeat(image[:, :, None], 3, axis=-1) if image.ndim == 2 else image
    H, W = img_3c.shape[:2]
    scale = 256 / max(H, W)
    newh, neww = int(H * scale + 0.5), int(W * scale + 0.5)
    img_256 = cv2.resize(img_3c, (neww, newh), interpolation=cv2.INTER_AREA)
    img_256 = (img_256 - img_256.min()) / np.clip(img_256.max() - img_256.min(), 1e-8, None)
    img_256 = np.pad(img_256, ((0, 256 - newh), (0, 256 - neww), (0, 0)))
    tensor = torch.tensor(img_256).float().permute(2, 0, 1).unsqueeze(0)
    box_256 = np.array([int(v * 256 / max(H, W)) for v in box])
    with torch.no_grad():
        embedding = lite.image_encoder(tensor)
        sparse, dense = lite.prompt_encoder(
            points=None, boxes=torch.as_tensor(box_256[None, None], dtype=torch.float),
            masks=None)
        low_res_logits, _ = lite.mask_decoder(
            image_embeddings=embedding, image_pe=lite.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=False)
        up = F.interpolate(low_res_logits[..., :newh, :neww], size=(H, W), mode="bilinear",
                           align_corners=False)
    expected = torch.sigmoid(up).squeeze().numpy() > 0.5

    p = MedSAMPredictor(lite, transform="litemedsam")
    assert p.variant == "Sam" and p.transform.name == "litemedsam"  # a foreign model: its class name
    p.set_image(image)
    masks, _, logits = p.predict(boxes=np.array(box))
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(masks[0], expected)
    np.testing.assert_allclose(logits, low_res_logits.numpy(), rtol=0, atol=1e-6)


def test_sam_transform_equals_reference_sam_steps(vit, case):
    """With transform="sam": the reference Sam's own preprocess/postprocess_masks."""
    image, box = case
    img_3c = np.repeat(image[:, :, None], 3, axis=-1) if image.ndim == 2 else image
    H, W = img_3c.shape[:2]
    scale = 1024 / max(H, W)
    newh, neww = int(H * scale + 0.5), int(W * scale + 0.5)
    resized = np.asarray(Image.fromarray(img_3c).resize((neww, newh), Image.BICUBIC))
    with torch.no_grad():
        x = vit.preprocess(torch.tensor(resized).permute(2, 0, 1)[None].float())
        embedding = vit.image_encoder(x)
        # ResizeLongestSide.apply_boxes: float64 numpy scaling, then float32 tensor
        box_t = torch.as_tensor(np.array([box], dtype=float) * [neww / W, newh / H, neww / W,
                                                                newh / H], dtype=torch.float)
        sparse, dense = vit.prompt_encoder(points=None, boxes=box_t, masks=None)
        low, _ = vit.mask_decoder(image_embeddings=embedding,
                                  image_pe=vit.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=True)
        expected = vit.postprocess_masks(low, (newh, neww), (H, W)) > vit.mask_threshold

    p = MedSAMPredictor(vit, transform="sam")
    p.set_image(image)
    masks, scores, logits = p.predict(boxes=box, multimask_output=True)
    assert masks.shape == (1, 3, H, W) and scores.shape == (1, 3)
    assert torch.equal(p.get_image_embedding(), embedding)
    np.testing.assert_array_equal(masks, expected.numpy())


def test_batched_boxes_equal_one_by_one(predictor, case):
    image, box = case
    H, W = image.shape[:2]
    boxes = np.array([box, [10, 20, 200, 150], [W // 2, H // 3, W - 1, H - 1], [0, 0, W, H]])
    masks, scores, logits = predictor.predict(boxes=boxes)
    assert masks.shape == (4, H, W)
    for i, b in enumerate(boxes):
        m1, s1, l1 = predictor.predict(boxes=b)
        np.testing.assert_allclose(l1[0], logits[i], rtol=0, atol=1e-5)
        np.testing.assert_allclose(s1[0], scores[i], rtol=0, atol=1e-5)
        assert (m1[0] != masks[i]).sum() <= 5  # at most a few pixels at the 0.5 boundary
    # decoding in chunks gives the same as one batch
    m2, s2, l2 = predictor.predict(boxes=boxes, batch_size=3)
    np.testing.assert_allclose(l2, logits, rtol=0, atol=1e-5)


def test_points_and_boxes_with_points(predictor, case):
    image, box = case
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    masks, scores, logits = predictor.predict(points=[[cx, cy]], point_labels=[1])
    assert masks.shape == (1, *image.shape[:2])
    both, _, _ = predictor.predict(boxes=[box, box], points=[[cx, cy], [box[0], box[1]]],
                                   point_labels=[1, 0])
    assert both.shape == (2, *image.shape[:2])
    np.testing.assert_array_equal(both[0], both[1])  # one point prompt shared by both boxes
    multi, mscores, mlogits = predictor.predict(points=[[[cx, cy]], [[10, 10]]],
                                                point_labels=[[1], [1]], multimask_output=True)
    assert multi.shape == (2, 3, *image.shape[:2]) and mlogits.shape == (2, 3, 256, 256)


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_embedding_round_trip(predictor, vit, case, tmp_path, suffix):
    image, box = case
    path = predictor.save_embedding(tmp_path / f"emb{suffix}")
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == [path.name]
    other = MedSAMPredictor(vit, transform="medsam")
    other.load_embedding(path)
    assert other.original_size == image.shape[:2]
    assert torch.equal(other.get_image_embedding(), predictor.get_image_embedding())
    m1, s1, l1 = predictor.predict(boxes=box)
    m2, s2, l2 = other.predict(boxes=box)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(l1, l2)
    with pytest.raises(InputError, match="exists"):
        predictor.save_embedding(path)
    predictor.save_embedding(path, overwrite=True)


def test_embedding_checked_on_load(predictor, vit, lite, tmp_path):
    path = predictor.save_embedding(tmp_path / "emb.npz")
    with pytest.raises(InputError, match="transform 'medsam' but this predictor uses 'sam'"):
        MedSAMPredictor(vit, transform="sam").load_embedding(path)
    with pytest.raises(InputError, match="emb.npz"):
        MedSAMPredictor(lite, transform="litemedsam").load_embedding(path)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(InputError, match="not a medsam embedding file"):
        MedSAMPredictor(vit, transform="medsam").load_embedding(broken)
    with pytest.raises(InputError, match="not found"):
        MedSAMPredictor(vit, transform="medsam").load_embedding(tmp_path / "missing.npz")


def test_reset_and_predict_before_set_image(lite, tmp_path):
    p = MedSAMPredictor(lite, transform="litemedsam")
    with pytest.raises(ValueError, match="no image set"):
        p.predict(boxes=[0, 0, 5, 5])
    with pytest.raises(ValueError, match="no image set"):
        p.get_image_embedding()
    with pytest.raises(ValueError, match="no image set"):
        p.save_embedding(tmp_path / "e.npz")
    p.set_image(np.zeros((40, 50), dtype=np.uint8))
    assert p.is_image_set
    p.reset_image()
    assert not p.is_image_set


@pytest.mark.parametrize("image, message", [
    (np.zeros((4, 5, 6, 3)), r"shape \(H, W\) or \(H, W, 3\)"),
    (np.zeros((4, 5, 2)), r"shape \(H, W\) or \(H, W, 3\)"),
    (np.zeros((0, 5)), "empty"),
    (np.full((8, 8), np.nan), "all NaN"),
    (np.where(np.eye(8) > 0, np.nan, 1.0), "8 NaN"),
    (np.full((8, 8), 300.0), r"\[0, 255\]"),
    (np.full((8, 8), -1.0), r"\[0, 255\]"),
    (np.zeros((8, 8), dtype=bool), "real numbers"),
])
def test_bad_images(lite, image, message):
    with pytest.raises(ValueError, match=message):
        MedSAMPredictor(lite, transform="litemedsam").set_image(image)


@pytest.mark.parametrize("kwargs, message", [
    ({"boxes": [10, 10, 5, 20]}, "zero or negative size"),
    ({"boxes": [10, 30, 20, 20]}, "zero or negative size"),
    ({"boxes": [-1, 0, 10, 10]}, "outside the image"),
    ({"boxes": [0, 0, 10, 10_000]}, "outside the image"),
    ({"boxes": [[0, 0, 10]]}, r"shape \(4,\) or \(N, 4\)"),
    ({"boxes": [0, 0, np.nan, 4]}, "finite"),
    ({}, "give boxes and/or points"),
    ({"points": [[5, 5]]}, "point_labels are required"),
    ({"points": [[5, 5]], "point_labels": [1, 1]}, "must have shape"),
    ({"points": [[5, 5]], "point_labels": [2]}, "1 \\(foreground\\) or 0"),
    ({"points": [[5000, 5]], "point_labels": [1]}, "outside the image"),
    ({"boxes": [[0, 0, 5, 5]] * 3, "points": [[[1, 1]]] * 2, "point_labels": [[1]] * 2},
     "3 boxes but 2 point prompts"),
])
def test_bad_prompts(predictor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)


def test_grey_float_image_accepted_like_uint8(lite):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (60, 80)).astype(np.uint8)
    a, b = MedSAMPredictor(lite, transform="litemedsam"), MedSAMPredictor(lite, transform="litemedsam")
    a.set_image(grey)
    b.set_image(np.repeat(grey[:, :, None].astype(np.float32), 3, axis=-1))
    assert torch.equal(a.get_image_embedding(), b.get_image_embedding())


def test_transform_must_fit_model(vit):
    with pytest.raises(ValueError, match="makes 256-pixel inputs but the model takes 1024"):
        MedSAMPredictor(vit, transform="litemedsam")
    # Meta's Sam has no ModelInfo: its preprocessing is never guessed from its shapes
    with pytest.raises(InputError, match="not built by medsam .* give its transform"):
        MedSAMPredictor(vit)


def test_devices(vit):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="not supported"):
        resolve_device("xla")
    with pytest.raises(InputError, match="not a device name"):
        resolve_device("gpu please")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(InputError, match="CUDA is not available"):
            MedSAMPredictor(vit, transform="medsam", device="cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        with pytest.raises(InputError, match="MPS is not available"):
            resolve_device("mps")
    assert MedSAMPredictor(vit, transform="medsam", device="cpu").device == torch.device("cpu")


# ---------------------------------------------------------------- with medsam's own models


def medsam_published_masks(model, image, boxes):
    """MedSAM_Inference.py on ``model``: masks (N, H, W), low-res logits (N, 1, 256, 256),
    IoU predictions (N, 1) and the image embedding (1, 256, 64, 64)."""
    skimage_transform = pytest.importorskip(
        "skimage.transform", reason="scikit-image is a test dependency (pip install -e '.[test]')")
    img_3c = np.repeat(image[:, :, None], 3, axis=-1) if image.ndim == 2 else image
    H, W, _ = img_3c.shape
    img_1024 = skimage_transform.resize(img_3c, (1024, 1024), order=3, preserve_range=True,
                                        anti_aliasing=True).astype(np.uint8)
    img_1024 = (img_1024 - img_1024.min()) / np.clip(img_1024.max() - img_1024.min(), 1e-8, None)
    tensor = torch.tensor(img_1024).float().permute(2, 0, 1).unsqueeze(0)
    box_1024 = np.array(boxes) / np.array([W, H, W, H]) * 1024
    with torch.no_grad():
        embedding = model.image_encoder(tensor)
        box_t = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
        sparse, dense = model.prompt_encoder(points=None, boxes=box_t, masks=None)
        low, iou = model.mask_decoder(
            image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=False)
        probs = F.interpolate(torch.sigmoid(low), size=(H, W), mode="bilinear",
                              align_corners=False)
    return probs[:, 0].numpy() > 0.5, low.numpy(), iou.numpy(), embedding


@pytest.mark.slow
def test_medsam_vit_b_equals_published_pipeline(case, random_vit_b):
    """Our ViT-B (random weights) through the predictor == MedSAM's script on it."""
    image, box = case
    model = random_vit_b
    boxes = [box, [0, 0, image.shape[1], image.shape[0]]]
    expected, expected_logits, _, _ = medsam_published_masks(model, image, boxes)
    p = MedSAMPredictor(model)
    assert (p.variant, p.transform.name) == ("vit_b", "medsam")
    p.set_image(image)
    masks, _, logits = p.predict(boxes=boxes)
    assert 0 < expected[0].sum() < expected[0].size
    np.testing.assert_allclose(logits, expected_logits, rtol=0, atol=1e-5)
    assert (masks != expected).sum() <= 5  # batch of 2 vs batch of 2: equal but for ties


def test_lite_model_from_named_weights(case, tmp_path, monkeypatch):
    """A LiteMedSAM checkpoint in the cache under its registry name, loaded with the
    LiteMedSAM transform; results equal LiteMedSAM's published steps."""
    cv2 = pytest.importorskip(
        "cv2", reason="opencv-python-headless is a test dependency (pip install -e '.[test]')")
    import medsam
    from medsam.errors import MedSAMError

    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path))
    with pytest.raises(MedSAMError, match="lite_medsam.pth"):
        MedSAMPredictor.from_weights("lite_medsam", download=False)
    torch.manual_seed(3)
    source = medsam.build_model("lite")
    (tmp_path / "weights").mkdir()
    torch.save(source.state_dict(), tmp_path / "weights" / "lite_medsam.pth")
    p = MedSAMPredictor.from_weights("lite_medsam", device="cpu")
    assert (p.variant, p.transform.name) == ("lite", "litemedsam")

    image, box = case
    H, W = image.shape[:2]
    newh, neww = int(H * 256 / max(H, W) + 0.5), int(W * 256 / max(H, W) + 0.5)
    img_256 = cv2.resize(image, (neww, newh), interpolation=cv2.INTER_AREA)
    img_256 = (img_256 - img_256.min()) / np.clip(img_256.max() - img_256.min(), 1e-8, None)
    img_256 = np.pad(img_256, ((0, 256 - newh), (0, 256 - neww), (0, 0)))
    with torch.no_grad():
        embedding = source.eval().image_encoder(
            torch.tensor(img_256).float().permute(2, 0, 1).unsqueeze(0))
    p.set_image(image)
    np.testing.assert_allclose(p.get_image_embedding().numpy(), embedding.numpy(), rtol=0,
                               atol=1e-5)
    masks, scores, logits = p.predict(boxes=box)
    assert masks.shape == (1, H, W) and np.isfinite(scores).all()


def test_predictor_uses_the_transform_recorded_on_the_model():
    from medsam import build_model

    model = build_model("vit_b")
    assert MedSAMPredictor(model).transform.name == "medsam"
    model.info = dataclasses.replace(model.info, transform="sam")  # as load_model sets for Meta's SAM weights
    assert MedSAMPredictor(model).transform.name == "sam"
    assert MedSAMPredictor(model, transform="medsam").transform.name == "medsam"


def test_from_weights_without_a_name_is_the_default_lite_medsam(lite_medsam_checkpoint, monkeypatch):
    import medsam

    monkeypatch.setenv("MEDSAM_HOME", str(lite_medsam_checkpoint.parents[1]))
    p = MedSAMPredictor.from_weights()
    assert (p.variant, p.transform.name) == ("lite", "litemedsam")
    model = medsam.load_model()
    assert model.variant == "lite" and model.info.transform == "litemedsam"
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, p.model.state_dict()[name], rtol=0, atol=0)


def test_user_input_errors_are_medsam_errors():
    """One error rule: what a user gets wrong is an InputError (a MedSAMError and a
    ValueError), raised where it is found, so the CLI reports it on one line."""
    from medsam import build_model
    from medsam.errors import InputError
    from medsam.intensity import normalize_intensity

    predictor = MedSAMPredictor(build_model("lite"))
    with pytest.raises(InputError, match="no image set"):
        predictor.predict(boxes=[[0, 0, 5, 5]])
    with pytest.raises(InputError, match="expected a 2D image"):
        predictor.set_image(np.zeros((2, 3, 4, 5)))
    predictor.set_image(np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="4 finite numbers"):
        predictor.predict(boxes=[[0, 0, np.nan, 5]])
    with pytest.raises(InputError, match="unknown modality 'sonar'"):
        normalize_intensity(np.zeros((4, 4)), "sonar")
