"""The on-disk slice embedding store: a fresh segmenter finds its embeddings there, the
folder stays bounded, and damaged or foreign files are computed again."""

import numpy as np
import pytest

from medsam.segmentation import MedSAMSegmenter
from medsam.segmentation.embedding_store import EmbeddingStore
from medsam.segmentation.segmenter import content_key


def _slice(seed, size=64):
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.uint8)
    image[16:48, 20:44] = 180 + rng.integers(0, 40, (32, 24))
    return image


def test_a_fresh_segmenter_reuses_stored_embeddings_exactly(lite_medsam_model, tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    image, box = _slice(0), np.array([[18, 14, 46, 50]])
    first = MedSAMSegmenter(lite_medsam_model, store=store)
    first.set_slice(image, key=content_key(image))
    expected = first.segment(box)
    assert store.misses == 1 and len(list((tmp_path / "emb").glob("*.npz"))) == 1
    second = MedSAMSegmenter(lite_medsam_model, store=EmbeddingStore(tmp_path / "emb"))
    second.set_slice(image, key=content_key(image))
    np.testing.assert_array_equal(second.segment(box), expected)
    assert second.store.hits == 1 and second.encoder_calls == 1   # a cache miss in memory, a hit on disk
    scored, iou, logits = second.segment_scored(box[0])
    np.testing.assert_array_equal(scored, expected[0])
    assert 0 < iou <= 1.5 and logits.shape == (256, 256)
    prompted, _, _ = second.segment_scored(box[0], mask_input=logits)   # SAM's dense prompt is taken
    assert prompted.shape == expected[0].shape


def test_damaged_files_are_computed_again_and_the_folder_stays_bounded(lite_medsam_model, tmp_path):
    store = EmbeddingStore(tmp_path / "emb")
    seg = MedSAMSegmenter(lite_medsam_model, store=store)
    image = _slice(1)
    seg.set_slice(image, key=content_key(image))
    (path,) = (tmp_path / "emb").glob("*.npz")
    one = path.stat().st_size
    path.write_bytes(b"not an npz")                              # damaged: recomputed, replaced
    fresh = MedSAMSegmenter(lite_medsam_model, store=store)
    fresh.set_slice(image, key=content_key(image))
    assert store.misses == 2 and path.stat().st_size == one
    small = EmbeddingStore(tmp_path / "small", max_bytes=int(2.5 * one))
    seg = MedSAMSegmenter(lite_medsam_model, store=small)
    for seed in range(2, 6):
        image = _slice(seed)
        seg.set_slice(image, key=content_key(image))
    assert len(list((tmp_path / "small").glob("*.npz"))) == 2 and small.nbytes() <= 2.5 * one
    off = EmbeddingStore(tmp_path / "off", max_bytes=0)
    MedSAMSegmenter(lite_medsam_model, store=off).set_slice(image, key=content_key(image))
    assert not (tmp_path / "off").exists()
    with pytest.raises(ValueError):
        EmbeddingStore(tmp_path, max_bytes=-1)


def test_files_belong_to_the_image_encoder_not_the_whole_model(lite_medsam_checkpoint, tmp_path):
    """A model whose decoder changed (a fine-tune with its encoder frozen) finds its base
    model's embeddings; one whose encoder changed does not."""
    import torch

    from medsam import load_model

    image = _slice(2)
    base, decoder_tuned, encoder_tuned = (load_model(lite_medsam_checkpoint) for _ in range(3))
    with torch.no_grad():
        next(decoder_tuned.mask_decoder.parameters()).add_(0.01)
        next(encoder_tuned.image_encoder.parameters()).add_(0.01)
    MedSAMSegmenter(base, store=EmbeddingStore(tmp_path / "emb")).set_slice(image, key=content_key(image))
    same = MedSAMSegmenter(decoder_tuned, store=EmbeddingStore(tmp_path / "emb"))
    same.set_slice(image, key=content_key(image))
    assert (same.store.hits, same.store.misses) == (1, 0)
    other = MedSAMSegmenter(encoder_tuned, store=EmbeddingStore(tmp_path / "emb"))
    other.set_slice(image, key=content_key(image))
    assert (other.store.hits, other.store.misses) == (0, 1)
    assert len(list((tmp_path / "emb").glob("*.npz"))) == 2


def test_a_file_under_another_slices_name_is_not_used(lite_medsam_model, tmp_path):
    """Copied or renamed to another slice's name, an embedding is refused by the digest it
    holds: the other slice gets its own embedding, the same mask as a clean run."""
    folder = tmp_path / "emb"
    a, b, box = _slice(7), _slice(8), np.array([[18, 14, 46, 50]])
    b[10:20, 10:20] = 250
    clean = MedSAMSegmenter(lite_medsam_model)
    clean.set_slice(b)
    expected = clean.segment(box)
    store = EmbeddingStore(folder)
    seg = MedSAMSegmenter(lite_medsam_model, store=store)
    seg.set_slice(a, key=content_key(a))
    seg.set_slice(b, key=content_key(b))
    namespace = seg._namespace
    path_a = store.path_for(namespace, content_key(a))
    path_b = store.path_for(namespace, content_key(b))
    path_b.write_bytes(path_a.read_bytes())                    # a's embedding under b's name
    fresh = MedSAMSegmenter(lite_medsam_model, store=EmbeddingStore(folder))
    fresh.set_slice(b, key=content_key(b))
    np.testing.assert_array_equal(fresh.segment(box), expected)
    assert fresh.store.hits == 0 and fresh.store.misses == 1
    path_b.unlink()
    path_b.symlink_to(path_a)                                  # a link planted in the folder
    fresh = MedSAMSegmenter(lite_medsam_model, store=EmbeddingStore(folder))
    fresh.set_slice(b, key=content_key(b))
    np.testing.assert_array_equal(fresh.segment(box), expected)
    assert fresh.store.hits == 0 and not path_b.is_symlink() and path_a.is_file()
