import numpy as np
import pytest

from medsam.segmentation.segmenter import CallableSegmenter, Segmenter2D, SliceCache, as_segmenter

from threshold_segmenter import ThresholdSegmenter


def test_slice_cache_lru():
    cache = SliceCache(max_items=2)
    computed = []

    def compute(k):
        return lambda: computed.append(k) or k * 10

    assert cache.get_or_compute(1, compute(1)) == 10
    assert cache.get_or_compute(2, compute(2)) == 20
    assert cache.get_or_compute(1, compute(1)) == 10          # hit; 1 is now most recent
    cache.get_or_compute(3, compute(3))                       # evicts 2
    assert 2 not in cache and 1 in cache and len(cache) == 2
    cache.get_or_compute(None, compute(4))                    # no key: never stored
    assert computed == [1, 2, 3, 4] and (cache.hits, cache.misses) == (1, 4)
    off = SliceCache(0)
    off.get_or_compute("a", compute(5))
    assert len(off) == 0
    with pytest.raises(ValueError):
        SliceCache(-1)


def test_adapters():
    seg = as_segmenter(lambda img, box: img > 0)
    assert isinstance(seg, CallableSegmenter) and isinstance(seg, Segmenter2D)
    with pytest.raises(ValueError, match="set_slice"):
        seg.segment(np.zeros((1, 4)))
    seg.set_slice(np.eye(3))
    out = seg.segment(np.zeros((2, 4)))
    assert out.shape == (2, 3, 3) and out.dtype == bool
    bad = as_segmenter(lambda img, box: np.zeros((2, 2)))
    bad.set_slice(np.eye(3))
    with pytest.raises(ValueError, match="shape"):
        bad.segment(np.zeros((1, 4)))
    t = ThresholdSegmenter(0, 1)
    assert as_segmenter(t) is t
    with pytest.raises(TypeError):
        as_segmenter(42)
