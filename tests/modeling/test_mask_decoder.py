"""The mask decoder against segment-anything 1.0 with the same weights."""

import pytest
import torch

from medsam.modeling.mask_decoder import MaskDecoder
from medsam.modeling.transformer import TwoWayTransformer


def _decoder():
    return MaskDecoder(transformer_dim=256,
                       transformer=TwoWayTransformer(depth=2, embedding_dim=256, num_heads=8,
                                                     mlp_dim=2048),
                       num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256)


@pytest.fixture(scope="module")
def decoders(reference, randomize):
    modeling, _ = reference

    torch.manual_seed(0)
    ref = modeling.MaskDecoder(
        transformer_dim=256,
        transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048,
                                               num_heads=8),
        num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=256)
    randomize(ref, seed=8, std=0.02)
    ours = _decoder()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _inputs(prompts=3, image_batch=1):
    gen = torch.Generator().manual_seed(9)
    return dict(
        image_embeddings=torch.randn(image_batch, 256, 64, 64, generator=gen),
        image_pe=torch.randn(1, 256, 64, 64, generator=gen),
        sparse_prompt_embeddings=torch.randn(prompts, 2, 256, generator=gen),
        dense_prompt_embeddings=torch.randn(prompts, 256, 64, 64, generator=gen) * 0.1,
    )


@pytest.mark.parametrize("multimask", [False, True])
def test_matches_reference(decoders, multimask):
    ours, ref = decoders
    inputs = _inputs()
    with torch.no_grad():
        masks, iou = ours(**inputs, multimask_output=multimask)
        ref_masks, ref_iou = ref(**inputs, multimask_output=multimask)
    n = 3 if multimask else 1
    assert masks.shape == (3, n, 256, 256) and iou.shape == (3, n)
    torch.testing.assert_close(masks, ref_masks, rtol=0, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=0, atol=1e-5)
    assert torch.equal(masks > 0, ref_masks > 0)


def test_one_image_per_prompt_equals_separate_calls(decoders):
    """MedSAM trains with a batch of images, one box each: (B, 256, 64, 64)
    embeddings with (B, K, 256) prompts pair up row by row."""
    ours, _ = decoders
    inputs = _inputs(prompts=2, image_batch=2)
    with torch.no_grad():
        masks, iou = ours(**inputs, multimask_output=False)
        for i in range(2):
            one = {k: (v[i:i + 1] if k != "image_pe" else v) for k, v in inputs.items()}
            m, q = ours(**one, multimask_output=False)
            torch.testing.assert_close(masks[i:i + 1], m, rtol=0, atol=1e-5)
            torch.testing.assert_close(iou[i:i + 1], q, rtol=0, atol=1e-6)


def test_rejects_mismatched_batch(decoders):
    ours, _ = decoders
    inputs = _inputs(prompts=3, image_batch=2)
    with pytest.raises(ValueError, match="image_embeddings has batch size 2"):
        ours(**inputs, multimask_output=False)
