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
