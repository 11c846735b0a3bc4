import numpy as np

from medsam.datasets.cases import remove_small_components
from medsam.training.curation import clean_labels, tile_origins
from medsam.training.manifest import assign_splits, split_counts


def test_small_components_are_removed_in_2d_and_3d():
    labels = np.zeros((4, 40, 40), np.uint8)
    labels[:, 0:10, 0:10] = 1          # 400 voxels, 100 px per slice: kept
    labels[0, 30:33, 30:33] = 1        # 9-voxel speck: dropped in 3D
    labels[1:3, 20:29, 20:29] = 2      # 162 voxels: dropped with min_voxels 200
    out = clean_labels(labels, is_volume=True, axis=0, min_pixels=100, min_voxels=200)
    assert out[:, 0:10, 0:10].all() and out.sum() == 400
    # per slice: a 9x9 object (81 px) is under 100 pixels
    two_d = clean_labels(labels[1], is_volume=False, axis=0, min_pixels=100, min_voxels=1)
    assert set(np.unique(two_d)) == {0, 1}
    diagonal = np.eye(5, dtype=bool)    # one component with full connectivity
    assert remove_small_components(diagonal, 5).sum() == 5


def test_tile_origins_cover_the_image():
    assert tile_origins(100, 128, 0) == [0]
    assert tile_origins(300, 128, 0) == [0, 128, 172]
    assert tile_origins(256, 128, 64) == [0, 64, 128]


def test_splits_are_by_case_reproducible_and_independent_of_order():
    cases = [f"c{i:02d}" for i in range(20)]
    a = assign_splits(cases, "ds", seed=5)
    b = assign_splits(list(reversed(cases)), "ds", seed=5)
    assert a == b
    assert [list(a.values()).count(s) for s in ("train", "tune", "validation")] == [16, 2, 2]
    assert assign_splits(cases, "ds", seed=6) != a
    assert set(assign_splits(cases, "ds", 0, external=True).values()) == {"validation"}
    assert split_counts(3, (0.8, 0.1, 0.1)) == (1, 1, 1)
    assert split_counts(2, (0.8, 0.1, 0.1)) == (2, 0, 0)
