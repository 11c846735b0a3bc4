"""Colour overlay PNGs of a label map on its image, for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path

#: RGB colour of label ``k`` is ``PALETTE[(k - 1) % len(PALETTE)]``
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)


def display_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a grey ``(H, W)`` or RGB ``(H, W, 3)`` image of any dtype to uint8 RGB for
    display: uint8 is kept, anything else is clipped to its 0.5-99.5th percentiles."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[-1] != 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {img.shape}")
    if img.dtype != np.uint8:
        f = img.astype(np.float64)
        finite = f[np.isfinite(f)]
        lo, hi = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
        if hi <= lo:
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = np.clip((np.nan_to_num(f, nan=lo) - lo) * scale, 0, 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return img


def overlay_rgb(image: np.ndarray, labels: np.ndarray, alpha: float = 0.35) -> np.ndarray:
    """Blend each label's colour into the image and draw its outline opaque.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)``.
        labels: ``(H, W)`` integer label map, 0 = background.
    Returns:
        ``(H, W, 3)`` uint8.
    """
    from scipy import ndimage

    rgb = display_uint8(image).astype(np.float64)
    labels = np.asarray(labels)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"labels of shape {labels.shape} do not match image {rgb.shape[:2]}")
    for label in np.unique(labels):
        if label == 0:
            continue
        mask = labels == label
        colour = np.asarray(PALETTE[(int(label) - 1) % len(PALETTE)], dtype=np.float64)
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * colour
        edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
        rgb[edge] = colour
    return rgb.round().astype(np.uint8)


def write_overlay_png(image: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                      alpha: float = 0.35, overwrite: bool = False) -> Path:
    """Write :func:`overlay_rgb` of a 2D image and label map to a PNG, atomically."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: overlays are written as .png")
    rgb = overlay_rgb(image, labels, alpha=alpha)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path
