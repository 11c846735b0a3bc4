"""Resampling an array from one geometry onto another grid, in physical space."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .geometry import Geometry


def resample(array: np.ndarray, geometry: Geometry, target_geometry: Geometry,
             target_shape: Sequence[int], interpolation: str = "nearest",
             default_value: float = 0.0) -> np.ndarray:
    """Resample ``array`` (on ``geometry``) onto the grid ``target_shape`` / ``target_geometry``.

    Each target voxel takes the value found at its world position in the source (so
    differing directions, origins and spacings are handled). Use ``"nearest"`` for label
    maps and ``"linear"`` for intensities. Shapes are in array axis order.

    Returns:
        array of ``target_shape`` with the source dtype (float64 for linear).
    """
    import SimpleITK as sitk

    interpolators = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
    if interpolation not in interpolators:
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if geometry.ndim != target_geometry.ndim or len(target_shape) != target_geometry.ndim:
        raise ValueError("source and target must have the same number of dimensions")
    src = geometry.to_sitk(array)
    if interpolation == "linear":
        src = sitk.Cast(src, sitk.sitkFloat64)
    ref = target_geometry.to_sitk(np.zeros(tuple(target_shape), dtype=np.uint8))
    out = sitk.Resample(src, ref, sitk.Transform(), interpolators[interpolation],
                        float(default_value), src.GetPixelID())
    return sitk.GetArrayFromImage(out)
