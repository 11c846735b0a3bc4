"""The ViT image encoder against segment-anything 1.0, piece by piece and as a
small whole (the full-size ViT-B comparison is in test_sam.py)."""

import pytest
import torch
from torch import nn

from medsam.modeling.image_encoder import (
    Attention,
    Block,
    ImageEncoderViT,
    decomposed_rel_pos_bias,
    relative_position_table,
    window_partition,
    window_unpartition,
)


@pytest.mark.parametrize("hw", [(28, 42), (30, 45), (14, 14), (5, 3)])
def test_window_partition_round_trip_and_padding(reference, hw):
    modeling, _ = reference
    ref_ie = modeling.image_encoder
    x = torch.randn(2, *hw, 8)
    windows, padded = window_partition(x, 14)
    ref_windows, ref_padded = ref_ie.window_partition(x, 14)
    assert padded == ref_padded == (-(-hw[0] // 14) * 14, -(-hw[1] // 14) * 14)
    assert torch.equal(windows, ref_windows)
    assert windows.shape == (2 * (padded[0] // 14) * (padded[1] // 14), 14, 14, 8)
    # the first window is the top-left corner, padding is zeros at the bottom/right
    assert torch.equal(windows[0, : min(14, hw[0]), : min(14, hw[1])], x[0, :14, :14])
    if padded != hw:
        assert windows[-1, -1, -1].abs().sum() == 0
    assert torch.equal(window_unpartition(windows, 14, padded, hw), x)


@pytest.mark.parametrize("q_size,k_size,length", [(14, 14, 27), (64, 64, 127), (20, 20, 27),
                                                  (8, 16, 31), (16, 8, 31)])
def test_relative_position_table_matches_reference(reference, q_size, k_size, length):
    modeling, _ = reference
    rel_pos = torch.randn(length, 6)
    ours = relative_position_table(q_size, k_size, rel_pos)
    ref = modeling.image_encoder.get_rel_pos(q_size, k_size, rel_pos)
    assert ours.shape == (q_size, k_size, 6)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-6)


def test_rel_pos_bias_is_the_decomposed_sum():
    q = torch.randn(1, 2, 3 * 4, 5)
    rel_h, rel_w = torch.randn(5, 5), torch.randn(7, 5)
    bias = decomposed_rel_pos_bias(q, rel_h, rel_w, (3, 4), (3, 4))
    grid = q.reshape(1, 2, 3, 4, 5)
    # query (i, j) and key (k, m): offsets i - k + 2 and j - m + 3 index the tables
    for i, j, k, m in [(0, 0, 0, 0), (2, 3, 0, 1), (1, 0, 2, 3)]:
        expected = grid[0, 1, i, j] @ rel_h[i - k + 2] + grid[0, 1, i, j] @ rel_w[j - m + 3]
        torch.testing.assert_close(bias[0, 1, i * 4 + j, k * 4 + m], expected)


def test_rel_pos_bias_of_a_band_of_query_rows():
    q = torch.randn(1, 2, 5 * 4, 3)
    rel_h, rel_w = torch.randn(9, 3), torch.randn(7, 3)
    whole = decomposed_rel_pos_bias(q, rel_h, rel_w, (5, 4), (5, 4))
    band = decomposed_rel_pos_bias(q[:, :, 8:16], rel_h, rel_w, (5, 4), (5, 4), first_row=2)
    torch.testing.assert_close(band, whole[:, :, 8:16], rtol=0, atol=0)


@pytest.mark.parametrize("size", [(14, 14), (9, 11)])
@pytest.mark.parametrize("band", [None, 2**10])
def test_attention_matches_reference(reference, randomize, size, band, monkeypatch):
    """Also with the bias computed in bands of query rows (a small band size forces several)."""
    from medsam.modeling import image_encoder

    if band is not None:
        monkeypatch.setattr(image_encoder, "BIAS_BAND_ELEMENTS", band)
    modeling, _ = reference
    torch.manual_seed(0)
    ref = randomize(modeling.image_encoder.Attention(48, num_heads=4, use_rel_pos=True,
                                                     input_size=size), seed=4, std=0.3)
    ours = Attention(48, num_heads=4, use_rel_pos=True, input_size=size)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, *size, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=2e-5)


@pytest.mark.parametrize("window_size", [0, 7])
def test_block_matches_reference(reference, randomize, window_size):
    modeling, _ = reference
    torch.manual_seed(0)
    norm = lambda dim: nn.LayerNorm(dim, eps=1e-6)  # noqa: E731
    ref = randomize(modeling.image_encoder.Block(48, 4, norm_layer=norm, use_rel_pos=True,
                                                 window_size=window_size, input_size=(20, 20)),
                    seed=5, std=0.2)
    ours = Block(48, 4, use_rel_pos=True, window_size=window_size, input_size=(20, 20))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 20, 20, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=2e-5)


def test_small_encoder_matches_reference(reference, randomize):
    """A small ViT with padded windows, a global block, rel-pos and abs-pos."""
    modeling, _ = reference
    from functools import partial

    kwargs = dict(img_size=160, patch_size=16, embed_dim=64, depth=3, num_heads=4, out_chans=32,
                  use_rel_pos=True, window_size=4, global_attn_indexes=(1,))
    torch.manual_seed(0)
    ref = randomize(modeling.ImageEncoderViT(norm_layer=partial(nn.LayerNorm, eps=1e-6),
                                             **kwargs), seed=6)
    ours = ImageEncoderViT(**kwargs)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (2, 32, 10, 10)
        torch.testing.assert_close(out, ref(x), rtol=0, atol=1e-4)
