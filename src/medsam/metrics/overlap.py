"""Region metrics: Dice similarity coefficient and volumes.

Masks are numpy arrays, nonzero = foreground, 2D (y, x) or 3D (z, y, x).
Spacing is in array axis order, millimetres.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["dice", "voxel_volume_mm", "ML_PER_MM3"]

ML_PER_MM3 = 1e-3


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice similarity coefficient ``2|P & G| / (|P| + |G|)`` in [0, 1].

    Both masks empty gives 1.0 (perfect agreement on absence, the convention of
    MedSAM's evaluation scripts); exactly one empty gives 0.0. Raises
    ValueError for different shapes.
    """
    pred, gt = np.asarray(pred) != 0, np.asarray(gt) != 0
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {gt.shape}")
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & gt)) / total


def voxel_volume_mm(spacing: Sequence[float]) -> float:
    """Volume of one voxel in mm^3 (area of one pixel in mm^2 for 2D spacing)."""
    spacing = [float(s) for s in spacing]
    if not spacing or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing {tuple(spacing)} must be positive and finite (mm)")
    return float(np.prod(spacing))
