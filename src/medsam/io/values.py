"""Checks on voxel values that every reader applies, and the label-map dtype every writer uses."""

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


def as_label_map(mask: np.ndarray) -> np.ndarray:
    """Cast a bool or integer mask to the smallest unsigned label dtype (uint8 / uint16).

    Raises ValueError for negative, non-integer, or > 65535 values."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        if not np.all(np.isfinite(mask)) or not np.all(mask == np.round(mask)):
            raise ValueError("label maps must hold whole numbers")
    elif not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"label maps must be integer or bool, got {mask.dtype}")
    lo, hi = (mask.min(), mask.max()) if mask.size else (0, 0)
    if lo < 0 or hi > 65535:
        raise ValueError(f"label ids must be in 0..65535, got {lo}..{hi}")
    return mask.astype(np.uint8 if hi <= 255 else np.uint16)
