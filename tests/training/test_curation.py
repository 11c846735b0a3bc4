import numpy as np
import pytest

from medsam.errors import InputError
from medsam.training.curation import clean_labels, remove_small_components, tile_origins
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


def test_non_integer_labels_need_a_threshold(tmp_path):
    from medsam.training.curation import select_labels
    from medsam.training.description import DatasetSpec

    spec = DatasetSpec(name="x", modality="rgb", images="*", labels=None, root=tmp_path)
    with pytest.raises(InputError, match="label_threshold"):
        select_labels(spec, np.array([[0.0, 0.5]]))
    soft = DatasetSpec(name="x", modality="rgb", images="*", labels=None, root=tmp_path,
                       label_threshold=127)
    assert select_labels(soft, np.array([[10, 200]])).tolist() == [[0, 1]]


def test_one_mask_file_per_class(shared_data):
    """SAM-Med2D's demo slices: one binary PNG per organ; a missing file is an absent organ."""
    from PIL import Image

    from medsam.training.curation import find_cases, read_case, select_labels
    from medsam.training.description import parse_dataset

    spec = parse_dataset({"name": "sammed2d", "modality": "ct", "intensity": "none",
                          "images": "sammed2d_demo/images/*.png",
                          "labels": "sammed2d_demo/masks/{stem}_{class}_000.png",
                          "classes": {"1": "liver", "2": "spleen", "3": "aorta"}},
                         shared_data, "test")
    cases = {c.case: c for c in find_cases(spec)}
    assert len(cases) == 5
    assert [label for label, _ in cases["amos_0006_90"].class_files] == [1, 2, 3]
    assert cases["s0619_32"].class_files == ()          # none of these organs on that slice
    image, labels, _ = read_case(spec, cases["amos_0006_90"])
    labels = select_labels(spec, labels)
    spleen = np.asarray(Image.open(shared_data / "sammed2d_demo/masks/amos_0006_90_spleen_000.png")) > 0
    assert labels.shape == image.shape[:2] and set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.array_equal(labels == 2, spleen & (labels != 3))   # the aorta, painted last, wins overlaps
    _, empty, _ = read_case(spec, cases["s0619_32"])
    assert not empty.any()


def test_class_template_needs_classes(tmp_path):
    from medsam.training.description import parse_dataset

    with pytest.raises(InputError, match="needs 'classes'"):
        parse_dataset({"name": "x", "modality": "ct", "images": "*.png", "labels": "{stem}_{class}.png"},
                      tmp_path, "test")
