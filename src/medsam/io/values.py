"""Checks on voxel values that every reader applies."""

from __future__ import annotations

import os
from typing import Iterable

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


def binarise(array: np.ndarray, threshold: float, path: str | os.PathLike) -> np.ndarray:
    """Foreground ``value > threshold`` of a mask as a bool array, refusing a threshold that
    would silently change what the file says: one that turns a file with foreground into
    an empty mask (the threshold is at or above its largest value), or one that leaves no
    background (every value is above it).

    An all-zero file stays empty whatever the threshold. Raises :class:`InputError` naming
    ``path``, the file's value range and the threshold.
    """
    array = np.asarray(array)
    if not np.isfinite(threshold):
        raise InputError(f"threshold must be a finite number, got {threshold}")
    if not array.size:
        return array > threshold
    low, high = array.min(), array.max()
    if low > threshold:   # e.g. DRIVE's 2nd_manual GIFs: background 3, vessels 253
        raise InputError(f"{path}: no pixel is background (values {low:g}..{high:g}, foreground is "
                         f"value > {threshold:g})", option="threshold")
    if high > 0 and high <= threshold:
        raise InputError(f"{path}: the threshold {threshold:g} empties this mask (values "
                         f"{low:g}..{high:g}, foreground is value > {threshold:g})", option="threshold")
    return array > threshold


def check_spacing(spacing: Iterable[float], path: str | os.PathLike, field: str = "spacing") -> None:
    """Raise :class:`InputError` naming ``path`` and ``field`` (the header field the values
    come from) unless every voxel size is a finite number > 0: readers would otherwise
    invent one (ITK reads a NIfTI ``pixdim`` of 0 as 1 mm and a negative one as its
    absolute value), and every volume in mL would be wrong without a word."""
    values = [float(v) for v in spacing]
    bad = [v for v in values if not (np.isfinite(v) and v > 0)]
    if bad:
        shown = " ".join(f"{v:g}" for v in values)
        raise InputError(f"{path}: {field} {shown} is not a voxel size (each must be a finite "
                         f"number > 0 mm); fix the header")
