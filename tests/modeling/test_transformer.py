import torch

from medsam.modeling.transformer import Attention, TwoWayTransformer


def test_two_way_transformer_matches_reference(reference, randomize):
    modeling, _ = reference
    torch.manual_seed(0)
    ref = randomize(modeling.TwoWayTransformer(depth=2, embedding_dim=64, num_heads=8,
                                               mlp_dim=128), seed=7, std=0.1)
    ours = TwoWayTransformer(depth=2, embedding_dim=64, num_heads=8, mlp_dim=128)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    image = torch.randn(3, 64, 16, 16)
    pe = torch.randn(1, 64, 16, 16).expand(3, -1, -1, -1)
    tokens = torch.randn(3, 7, 64)
    with torch.no_grad():
        queries, keys = ours(image, pe, tokens)
        ref_queries, ref_keys = ref(image, pe, tokens)
    assert queries.shape == (3, 7, 64) and keys.shape == (3, 256, 64)
    torch.testing.assert_close(queries, ref_queries, rtol=0, atol=1e-5)
    torch.testing.assert_close(keys, ref_keys, rtol=0, atol=1e-5)


def test_attention_downsampled_width(reference):
    modeling, _ = reference
    ref = modeling.transformer.Attention(64, 8, downsample_rate=2)
    ours = Attention(64, 8, downsample_rate=2)
    ours.load_state_dict(ref.state_dict())
    assert ours.q_proj.weight.shape == (32, 64) and ours.out_proj.weight.shape == (64, 32)
    q, kv = torch.randn(2, 5, 64), torch.randn(2, 40, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(q, kv, kv), ref(q, kv, kv), rtol=0, atol=1e-6)


def test_attention_rejects_indivisible_heads():
    import pytest

    with pytest.raises(ValueError, match="num_heads"):
        Attention(64, 6)


def test_attention_moves_projections_to_the_few_tokens_with_reference_results(reference):
    """At SAM's widths (256, 8 heads, internal 128) a handful of prompt tokens against
    4096 image tokens takes the factored paths; results and gradients are the reference's."""
    import pytest

    modeling, _ = reference
    torch.manual_seed(0)
    ref = modeling.transformer.Attention(256, 8, downsample_rate=2)
    ours = Attention(256, 8, downsample_rate=2)
    ours.load_state_dict(ref.state_dict())
    tokens = torch.randn(2, 7, 256, requires_grad=True)
    image = torch.randn(2, 4096, 256, requires_grad=True)
    assert ours._short(7) and not ours._short(4096) and not ours._short(16)
    for q, kv in ((tokens, image), (image, tokens)):
        out, expected = ours(q, kv, kv), ref(q, kv, kv)
        torch.testing.assert_close(out, expected, rtol=0, atol=2e-6)
        grads = torch.autograd.grad(out.square().sum(), [tokens, image, ours.k_proj.weight])
        ref_grads = torch.autograd.grad(expected.square().sum(), [tokens, image, ref.k_proj.weight])
        for g, r in zip(grads, ref_grads):  # sums over 4096 tokens: compare by norm
            assert ((g - r).norm() / r.norm()).item() < 1e-5
    with pytest.raises(AssertionError):  # the comparison can fail: a wrong bias shows
        with torch.no_grad():
            ours.q_proj.bias += 0.1
        torch.testing.assert_close(ours(image, tokens, tokens), ref(image, tokens, tokens),
                                   rtol=0, atol=2e-6)
