"""End-to-end parity with segment-anything 1.0 for ViT-B (the MedSAM model).

The reference ViT-B is built with random weights (every tensor perturbed, so
the zero-initialised position embeddings count), saved to a file and loaded by
both implementations; ours through :func:`medsam.load_model`. Image embedding,
low-resolution logits and IoU predictions must agree within 1e-4 in float32 and
the thresholded masks must be identical (at full resolution: except pixels whose
interpolated logit lies within 1e-4 of the threshold), for box and point
prompts, single and multimask. This is what makes real MedSAM weights give MedSAM's masks.
"""


import numpy as np
import pytest
import torch
from torch.nn import functional as F

import medsam

ATOL = 1e-4


def _test_image() -> torch.Tensor:
    """A smooth image with edges and noise, normalised like SAM's input: (1, 3, 1024, 1024)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024] / 1024.0
    base = np.sin(6 * xx) * np.cos(4 * yy) + ((xx - 0.4) ** 2 + (yy - 0.6) ** 2 < 0.05)
    channels = [base + 0.3 * rng.standard_normal(base.shape) + shift for shift in (0, 0.2, -0.2)]
    return torch.from_numpy(np.stack(channels)[None].astype(np.float32))


@pytest.fixture(scope="module")
def pair(reference, randomize, tmp_path_factory):
    _, build_sam = reference
    torch.manual_seed(0)
    ref = build_sam.build_sam_vit_b()
    randomize(ref, seed=21, std=0.02)
    with torch.no_grad():  # give the relative and absolute position embeddings real weight
        for name, p in ref.named_parameters():
            if "rel_pos" in name or "pos_embed" in name:
                p.normal_(0.0, 0.2)
        for mlp in ref.mask_decoder.output_hypernetworks_mlps:  # logits of a few units, as
            mlp.layers[-1].weight.mul_(20.0)                    # with trained weights
    path = tmp_path_factory.mktemp("ckpt") / "vit_b_random.pth"
    torch.save(ref.state_dict(), path)
    ref.load_state_dict(torch.load(path, weights_only=True))
    ours = medsam.load_model(path)
    image = _test_image()
    with torch.inference_mode():
        ref_embedding = ref.image_encoder(image)
        embedding = ours.image_encoder(image)
    return ours, ref, embedding, ref_embedding, None


@pytest.mark.slow  # two full ViT-B passes at 1024x1024 on the CPU
def test_loaded_model(pair):
    ours, _, _, _, _ = pair
    assert ours.variant == "vit_b" and ours.image_size == 1024 and not ours.training


@pytest.mark.slow  # two full ViT-B passes at 1024x1024 on the CPU
def test_image_embedding(pair):
    _, _, embedding, ref_embedding, _ = pair
    assert embedding.shape == (1, 256, 64, 64)
    assert ref_embedding.abs().mean() > 0.1  # not a degenerate comparison
    torch.testing.assert_close(embedding, ref_embedding, rtol=0, atol=ATOL)


def _prompts(kind):
    boxes = torch.tensor([[100.0, 150.0, 600.0, 700.0], [400.0, 380.0, 520.0, 450.0],
                          [0.0, 0.0, 1023.0, 1023.0]])
    coords = torch.tensor([[[300.0, 420.0], [500.0, 500.0], [10.0, 1000.0]],
                           [[700.0, 200.0], [650.0, 260.0], [900.0, 900.0]]])
    labels = torch.tensor([[1, 1, 0], [1, 0, 0]])
    if kind == "box":
        return dict(points=None, boxes=boxes, masks=None)
    if kind == "points":
        return dict(points=(coords, labels), boxes=None, masks=None)
    return dict(points=(coords[:1], labels[:1]), boxes=boxes[:1], masks=None)


@pytest.mark.slow  # two full ViT-B passes at 1024x1024 on the CPU
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("kind", ["box", "points", "box+points"])
def test_logits_iou_and_masks(pair, kind, multimask):
    ours, ref, embedding, ref_embedding, _ = pair
    prompts = _prompts(kind)
    with torch.inference_mode():
        sparse, dense = ours.prompt_encoder(**prompts)
        logits, iou = ours.mask_decoder(embedding, ours.prompt_encoder.get_dense_pe(), sparse,
                                        dense, multimask_output=multimask)
        ref_sparse, ref_dense = ref.prompt_encoder(**prompts)
        ref_logits, ref_iou = ref.mask_decoder(ref_embedding, ref.prompt_encoder.get_dense_pe(),
                                               ref_sparse, ref_dense, multimask_output=multimask)
    n = 3 if multimask else 1
    assert logits.shape == ref_logits.shape == (len(sparse), n, 256, 256)
    assert iou.shape == (len(sparse), n)
    assert ref_logits.abs().mean() > 1.0
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=ATOL)
    torch.testing.assert_close(iou, ref_iou, rtol=0, atol=ATOL)
    # the model's masks (low-resolution logits > 0) are identical
    assert torch.equal(logits > 0, ref_logits > 0)
    # Upscaled to the input frame (as SAM and MedSAM do), bilinear interpolation
    # passes arbitrarily close to 0 along every mask edge, so float rounding can
    # flip a pixel whose interpolated logit is within rounding error of the
    # threshold. Everywhere else the masks are identical.
    up = F.interpolate(logits, (1024, 1024), mode="bilinear", align_corners=False)
    ref_up = F.interpolate(ref_logits, (1024, 1024), mode="bilinear", align_corners=False)
    flipped = (up > 0) != (ref_up > 0)
    assert not (flipped & (ref_up.abs() > ATOL)).any()
    assert flipped.sum() <= 10
    assert 0 < (up > 0).float().mean() < 1  # masks that are neither empty nor full


def _small_sam():
    """A Sam with tiny components (64x64 input, 8x8 embedding of width 32)."""
    from medsam.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(3)
    return Sam(
        ImageEncoderViT(img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                        out_chans=32, window_size=4, global_attn_indexes=(1,)),
        PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(64, 64),
                      mask_in_chans=16),
        MaskDecoder(transformer_dim=32,
                    transformer=TwoWayTransformer(depth=2, embedding_dim=32, num_heads=2,
                                                  mlp_dim=64)),
        image_size=64, variant="tiny",
    ).eval()


def test_forward_pairs_image_i_with_prompt_i():
    """``Sam.forward`` (the batched form used for training): one prompt per image."""
    model = _small_sam()
    images = torch.randn(3, 3, 64, 64)
    boxes = torch.tensor([[4.0, 5.0, 30.0, 40.0], [10.0, 10.0, 60.0, 50.0], [0.0, 0.0, 63.0, 63.0]])
    with torch.no_grad():
        logits, iou = model(images, boxes=boxes)
        assert logits.shape == (3, 1, 32, 32) and iou.shape == (3, 1)
        multi, multi_iou = model(images, boxes=boxes, multimask_output=True)
        assert multi.shape == (3, 3, 32, 32) and multi_iou.shape == (3, 3)
        for i in range(3):
            one, one_iou = model(images[i:i + 1], boxes=boxes[i:i + 1])
            torch.testing.assert_close(logits[i:i + 1], one, rtol=0, atol=1e-5)
            torch.testing.assert_close(iou[i:i + 1], one_iou, rtol=0, atol=1e-6)
        # points and a previous mask go through as well
        points = (torch.tensor([[[20.0, 20.0]]] * 3), torch.ones(3, 1, dtype=torch.long))
        again, _ = model(images, points=points, masks=torch.randn(3, 1, 32, 32))
        assert again.shape == (3, 1, 32, 32)
    assert model.device == torch.device("cpu")
    assert "variant='tiny'" in repr(model)
