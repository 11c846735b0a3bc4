import numpy as np
import pytest

from medsam.metrics import dice, voxel_volume_mm


def test_dice_known_value():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:4, 0:5] = True  # 20
    b[2:6, 0:5] = True  # 20, overlap 10
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == 1.0


def test_dice_empty_cases():
    empty = np.zeros((4, 4, 4), np.uint8)
    full = np.ones((4, 4, 4), np.uint8)
    assert dice(empty, empty) == 1.0
    assert dice(full, empty) == 0.0
    assert dice(empty, full) == 0.0


def test_dice_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((3, 3)), np.zeros((3, 4)))


def test_voxel_volume():
    assert voxel_volume_mm((2.0, 0.5, 0.5)) == 0.5
    assert voxel_volume_mm((0.5, 0.25)) == 0.125
    with pytest.raises(ValueError):
        voxel_volume_mm((1.0, 0.0, 1.0))
