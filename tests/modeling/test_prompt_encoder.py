"""The prompt encoder against segment-anything 1.0 with the same weights."""

import pytest
import torch

from medsam.modeling.prompt_encoder import PositionEmbeddingRandom, PromptEncoder


@pytest.fixture(scope="module")
def encoders(reference):
    modeling, _ = reference
    torch.manual_seed(0)
    ref = modeling.PromptEncoder(embed_dim=256, image_embedding_size=(64, 64),
                                 input_image_size=(1024, 1024), mask_in_chans=16)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    ours = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64),
                         input_image_size=(1024, 1024), mask_in_chans=16)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _close(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, rtol=0, atol=atol)


def _prompts():
    gen = torch.Generator().manual_seed(1)
    coords = torch.rand(3, 4, 2, generator=gen) * 1023
    labels = torch.tensor([[1, 0, 1, -1], [1, 1, 1, 1], [0, -1, -1, 1]])
    corners = torch.rand(3, 2, 2, generator=gen) * 1023
    boxes = torch.cat([corners.min(1).values, corners.max(1).values], dim=1)  # xyxy
    masks = torch.randn(3, 1, 256, 256, generator=gen) * 4
    return (coords, labels), boxes, masks


@pytest.mark.parametrize("use_points,use_boxes,use_masks", [
    (True, False, False), (False, True, False), (True, True, False), (False, False, True),
    (True, True, True), (False, False, False),
])
def test_matches_reference(encoders, use_points, use_boxes, use_masks):
    ours, ref = encoders
    points, boxes, masks = _prompts()
    args = dict(points=points if use_points else None, boxes=boxes if use_boxes else None,
                masks=masks if use_masks else None)
    with torch.no_grad():
        sparse, dense = ours(**args)
        ref_sparse, ref_dense = ref(**args)
    expected_tokens = (4 + (0 if use_boxes else 1) if use_points else 0) + (2 if use_boxes else 0)
    batch = 3 if (use_points or use_boxes or use_masks) else 1
    assert sparse.shape == (batch, expected_tokens, 256)
    assert dense.shape == (batch, 256, 64, 64)
    _close(sparse, ref_sparse)
    _close(dense, ref_dense)


def test_box_shapes_and_dense_pe(encoders):
    ours, ref = encoders
    _, boxes, _ = _prompts()
    with torch.no_grad():
        flat, _ = ours(points=None, boxes=boxes, masks=None)
        nested, _ = ours(points=None, boxes=boxes[:, None, :], masks=None)
        _close(flat, nested, atol=0)
        pe = ours.get_dense_pe()
    assert pe.shape == (1, 256, 64, 64)
    _close(pe, ref.get_dense_pe())


def test_point_labels_select_embeddings(encoders):
    ours, _ = encoders
    coords = torch.full((1, 3, 2), 100.0)
    with torch.no_grad():
        sparse, _ = ours(points=(coords, torch.tensor([[1, 0, -1]])), boxes=None, masks=None)
    # same position, different labels: differ by the learned label embeddings
    _close(sparse[0, 0] - sparse[0, 1],
           ours.point_embeddings[1].weight[0] - ours.point_embeddings[0].weight[0])
    # label -1 (and the padding point) carry only the "not a point" embedding
    _close(sparse[0, 2], ours.not_a_point_embed.weight[0], atol=0)
    _close(sparse[0, 3], ours.not_a_point_embed.weight[0], atol=0)


def test_position_embedding_frame():
    pe = PositionEmbeddingRandom(8)
    grid = pe((4, 6))  # (2F, H, W): cell centres of a 4 x 6 grid
    assert grid.shape == (16, 4, 6)
    # the centre of cell (row 1, col 2) in a 256-pixel-per-cell frame
    point = pe.forward_with_coords(torch.tensor([[[2.5 * 256, 1.5 * 256]]]), (4 * 256, 6 * 256))
    _close(point[0, 0], grid[:, 1, 2])
