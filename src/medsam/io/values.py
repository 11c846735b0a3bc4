"""Checks on voxel values that every reader applies."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError


def check_finite(array: np.ndarray, path: str | os.PathLike) -> None:
    """Raise :class:`InputError` naming ``path`` when a float array holds NaN or infinity
    (a segmentation or a volume in mL computed from them would be silently wrong)."""
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise InputError(f"{path}: {bad} voxels are NaN or infinite; replace or mask them "
                             f"before use")
