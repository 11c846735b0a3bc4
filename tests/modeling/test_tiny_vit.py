"""LiteMedSAM's TinyViT encoder.

There is no installable reference implementation, so the expected state-dict
layout below is written out from the public LiteMedSAM code: ``tiny_vit_sam.py``
(classes Conv2d_BN, PatchEmbed with two 1x1 Conv2d_BN at stride 1, MBConv,
PatchMerging whose depthwise conv has stride 1 when out_dim is 320, ConvLayer,
Attention, Mlp, TinyViTBlock, BasicLayer, TinyViT with its neck) and the model
built in ``CVPR24_LiteMedSAM_infer.py`` (bowang-lab/MedSAM, LiteMedSAM branch):
img_size=256, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4,
mbconv_expand_ratio=4, local_conv_size=3.
"""

import itertools

import pytest
import torch

from medsam.modeling import build_model
from medsam.modeling.tiny_vit import Attention, TinyViT, TinyViTBlock, offset_index

DIMS = [64, 128, 160, 320]
DEPTHS = [2, 2, 6, 2]
HEADS = [2, 4, 5, 10]
WINDOWS = [7, 7, 14, 7]


def _conv_bn(prefix, out_ch, in_per_group, k):
    return {f"{prefix}.c.weight": (out_ch, in_per_group, k, k),
            f"{prefix}.bn.weight": (out_ch,), f"{prefix}.bn.bias": (out_ch,),
            f"{prefix}.bn.running_mean": (out_ch,), f"{prefix}.bn.running_var": (out_ch,),
            f"{prefix}.bn.num_batches_tracked": ()}


def expected_encoder_layout():
    """key -> shape of the LiteMedSAM image encoder, after the reference code."""
    keys = {}
    keys.update(_conv_bn("patch_embed.seq.0", DIMS[0] // 2, 3, 1))
    keys.update(_conv_bn("patch_embed.seq.2", DIMS[0], DIMS[0] // 2, 1))
    for j in range(DEPTHS[0]):  # MBConv, hidden = 4 * dim
        p, d, h = f"layers.0.blocks.{j}", DIMS[0], 4 * DIMS[0]
        keys.update(_conv_bn(f"{p}.conv1", h, d, 1))
        keys.update(_conv_bn(f"{p}.conv2", h, 1, 3))
        keys.update(_conv_bn(f"{p}.conv3", d, h, 1))
    for i in range(1, 4):
        d, w = DIMS[i], WINDOWS[i]
        for j in range(DEPTHS[i]):
            p = f"layers.{i}.blocks.{j}"
            keys.update({
                f"{p}.attn.attention_biases": (HEADS[i], w * w),  # one per offset (|dy|, |dx|)
                f"{p}.attn.norm.weight": (d,), f"{p}.attn.norm.bias": (d,),
                f"{p}.attn.qkv.weight": (3 * d, d), f"{p}.attn.qkv.bias": (3 * d,),
                f"{p}.attn.proj.weight": (d, d), f"{p}.attn.proj.bias": (d,),
                f"{p}.mlp.norm.weight": (d,), f"{p}.mlp.norm.bias": (d,),
                f"{p}.mlp.fc1.weight": (4 * d, d), f"{p}.mlp.fc1.bias": (4 * d,),
                f"{p}.mlp.fc2.weight": (d, 4 * d), f"{p}.mlp.fc2.bias": (d,),
            })
            keys.update(_conv_bn(f"{p}.local_conv", d, 1, 3))
    for i in range(3):  # PatchMerging after stages 0, 1, 2
        p, d, o = f"layers.{i}.downsample", DIMS[i], DIMS[i + 1]
        keys.update(_conv_bn(f"{p}.conv1", o, d, 1))
        keys.update(_conv_bn(f"{p}.conv2", o, 1, 3))
        keys.update(_conv_bn(f"{p}.conv3", o, o, 1))
    keys.update({"neck.0.weight": (256, DIMS[-1], 1, 1), "neck.1.weight": (256,),
                 "neck.1.bias": (256,), "neck.2.weight": (256, 256, 3, 3),
                 "neck.3.weight": (256,), "neck.3.bias": (256,)})
    return keys


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return build_model("lite")


def test_state_dict_layout_is_litemedsams(lite):
    expected = expected_encoder_layout()
    ours = {k: tuple(v.shape) for k, v in lite.image_encoder.state_dict().items()}
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    assert ours == expected
    # the prompt encoder works in the 256-pixel input frame, decoder as in SAM
    assert lite.prompt_encoder.input_image_size == (256, 256)
    assert lite.prompt_encoder.image_embedding_size == (64, 64)
    assert lite.image_size == 256 and lite.variant == "lite"


def test_parameter_count(lite):
    layout = expected_encoder_layout()
    expected = sum(int(torch.Size(shape).numel()) for key, shape in layout.items()
                   if ".bn.running_" not in key and "num_batches_tracked" not in key)
    count = sum(p.numel() for p in lite.image_encoder.parameters() if p.requires_grad)
    assert count == expected == 5_726_740
    assert sum(p.numel() for p in lite.mask_decoder.parameters()) == 4_058_340


def test_offset_index_follows_tinyvits_enumeration():
    """TinyViT numbers offsets (|dy|, |dx|) in the order first met while scanning
    all (query, key) cell pairs in row-major order."""
    for window in (7, 14):
        cells = list(itertools.product(range(window), range(window)))
        numbers, table = {}, []
        for a in cells:
            for b in cells:
                offset = (abs(a[0] - b[0]), abs(a[1] - b[1]))
                numbers.setdefault(offset, len(numbers))
                table.append(numbers[offset])
        expected = torch.tensor(table).view(window * window, window * window)
        assert len(numbers) == window * window
        assert torch.equal(offset_index(window), expected)


def test_attention_is_biased_softmax_attention(randomize):
    """Per head the qkv output holds [query, key, value]; scores are
    q.k / sqrt(head_dim) + bias[offset]."""
    torch.manual_seed(0)
    attn = randomize(Attention(dim=20, num_heads=2, window=3), seed=11, std=0.5)
    x = torch.randn(4, 9, 20)
    with torch.no_grad():
        out = attn(x)
        qkv = attn.qkv(attn.norm(x)).view(4, 9, 2, 30)
        heads = []
        for h in range(2):
            q, k, v = qkv[:, :, h, :10], qkv[:, :, h, 10:20], qkv[:, :, h, 20:]
            scores = q @ k.transpose(1, 2) / 10 ** 0.5
            scores = scores + attn.attention_biases[h][offset_index(3)]
            heads.append(scores.softmax(-1) @ v)
        expected = attn.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(14, 14), (10, 17)])
def test_block_attends_within_zero_padded_windows(randomize, size):
    torch.manual_seed(0)
    block = randomize(TinyViTBlock(dim=20, num_heads=2, window_size=7), seed=12, std=0.2).eval()
    x = torch.randn(2, *size, 20)
    with torch.no_grad():
        out = block(x)
        h, w = size
        padded = torch.zeros(2, -(-h // 7) * 7, -(-w // 7) * 7, 20)
        padded[:, :h, :w] = x
        attended = torch.zeros_like(padded)
        for r in range(0, padded.shape[1], 7):
            for c in range(0, padded.shape[2], 7):
                window = padded[:, r:r + 7, c:c + 7].reshape(2, 49, 20)
                attended[:, r:r + 7, c:c + 7] = block.attn(window).view(2, 7, 7, 20)
        y = x + attended[:, :h, :w]
        y = block.local_conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        expected = y + block.mlp(y)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.slow  # three 256x256 encoder passes: ~15 s on a busy 2-core machine
def test_checkpoint_round_trip_and_output_shapes(lite, tmp_path, randomize):
    """Save a randomised model, load it back strictly through load_model (the
    variant inferred from the keys), and get the same outputs; embeddings are
    (B, 256, 64, 64) for 256x256 input."""
    from medsam.loading import load_model

    randomize(lite, seed=13, std=0.02)
    path = tmp_path / "lite.pth"
    torch.save(lite.state_dict(), path)
    loaded = load_model(path)
    assert loaded.variant == "lite" and loaded.image_size == 256 and not loaded.training
    for (key, a), (key2, b) in zip(lite.state_dict().items(), loaded.state_dict().items()):
        assert key == key2 and torch.equal(a, b)

    x = torch.randn(2, 3, 256, 256)
    boxes = torch.tensor([[30.0, 40.0, 150.0, 200.0]])
    with torch.no_grad():
        embeddings = loaded.image_encoder(x)
        assert embeddings.shape == (2, 256, 64, 64)
        assert torch.isfinite(embeddings).all()
        # same weights, and batch items independent (eval-mode batch norm)
        original = lite.image_encoder(x[1:])
        torch.testing.assert_close(embeddings[1:], original, rtol=0, atol=1e-4)
        sparse, dense = loaded.prompt_encoder(points=None, boxes=boxes, masks=None)
        logits, iou = loaded.mask_decoder(embeddings[1:], loaded.prompt_encoder.get_dense_pe(),
                                          sparse, dense, multimask_output=False)
        ref_logits, ref_iou = lite.mask_decoder(original, lite.prompt_encoder.get_dense_pe(),
                                                sparse, dense, multimask_output=False)
    assert logits.shape == (1, 1, 256, 256) and iou.shape == (1, 1)
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-4)


def test_rejects_inconsistent_stage_lists():
    with pytest.raises(ValueError, match="one entry per stage"):
        TinyViT(depths=(2, 2, 6), merge_strides=(2, 2, 1))


def test_training_after_inference_in_the_same_process():
    """Cached index tensors made under inference_mode must not break autograd later."""
    from medsam.modeling.tiny_vit import _offset_index

    _offset_index.cache_clear()
    model = build_model("lite")
    x = torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        model.image_encoder(x)
    model.train()
    out = model.image_encoder(x)
    out.mean().backward()
    assert model.image_encoder.neck[0].weight.grad is not None


@pytest.mark.parametrize("height", [33, 70])
def test_mbconv_in_stripes_equals_the_whole_block(randomize, height):
    """Stripes of 16 rows with one row of context either side (the last one short) give
    the block's result on the whole image, zero padding at the true borders included."""
    from medsam.modeling.tiny_vit import MBCONV_STRIPE_ROWS, MBConv

    block = randomize(MBConv(8, 4.0), seed=3).eval()
    x = torch.randn(2, 8, height, 21).contiguous(memory_format=torch.channels_last)
    assert height > 2 * MBCONV_STRIPE_ROWS
    with torch.no_grad():
        torch.testing.assert_close(block(x), block._block(x), rtol=0, atol=1e-6)
        block.train()  # batch statistics: of the whole image, never of a stripe
        torch.testing.assert_close(block(x), block._block(x), rtol=0, atol=0)
