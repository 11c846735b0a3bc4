import torch

from medsam.modeling.common import MLP, LayerNorm2d, MLPBlock


def test_layernorm2d_matches_reference(reference, randomize):
    modeling, _ = reference
    ref = randomize(modeling.common.LayerNorm2d(32), seed=1, std=0.5)
    ours = LayerNorm2d(32)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 32, 9, 7) * 3 + 1
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    # normalised over channels: zero mean, unit variance per pixel before the affine part
    plain = LayerNorm2d(32)(x)
    torch.testing.assert_close(plain.mean(1), torch.zeros(2, 9, 7), rtol=0, atol=1e-5)
    torch.testing.assert_close(plain.var(1, unbiased=False), torch.ones(2, 9, 7), rtol=0, atol=1e-3)


def test_mlp_block_and_mlp_match_reference(reference, randomize):
    modeling, _ = reference
    ref_block = randomize(modeling.common.MLPBlock(16, 64), seed=2)
    block = MLPBlock(16, 64)
    block.load_state_dict(ref_block.state_dict())
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(block(x), ref_block(x), rtol=0, atol=1e-6)

    RefMLP = modeling.mask_decoder.MLP
    for sigmoid in (False, True):
        ref_mlp = randomize(RefMLP(16, 32, 8, 3, sigmoid_output=sigmoid), seed=3)
        mlp = MLP(16, 32, 8, 3, sigmoid_output=sigmoid)
        mlp.load_state_dict(ref_mlp.state_dict())
        torch.testing.assert_close(mlp(x), ref_mlp(x), rtol=0, atol=1e-6)
    assert [tuple(layer.weight.shape) for layer in mlp.layers] == [(32, 16), (32, 32), (8, 32)]


def test_by_token_chunks_gives_the_whole_result():
    from medsam.modeling.common import by_token_chunks

    block = MLPBlock(16, 64)
    x = torch.randn(2, 9, 7, 16)
    with torch.no_grad():
        whole = block._mlp(x)
        chunked = by_token_chunks(block._mlp, x, chunk=10)  # 126 tokens: 13 chunks, the last short
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
        assert chunked.shape == (2, 9, 7, 16)
        assert by_token_chunks(lambda t: t[..., :3], x, chunk=10).shape == (2, 9, 7, 3)
