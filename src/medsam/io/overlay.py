"""Colour overlay PNGs of a label map on its image, for people to look at (each label in
its :func:`~.segments.label_colour`, as the web app and the Slicer and DICOM SEG exports)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path
from .segments import label_colour


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
        colour = np.asarray(label_colour(int(label)), dtype=np.float64)
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


def montage_slices(labels: np.ndarray, max_slices: int = 16) -> list[int]:
    """Up to ``max_slices`` slice numbers of a ``(z, y, x)`` label map that hold labels,
    evenly spread from the first such slice to the last (all of them when few)."""
    labels = np.asarray(labels)
    holding = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    if holding.size <= max_slices:
        return [int(z) for z in holding]
    picks = np.linspace(0, holding.size - 1, max_slices).round().astype(int)
    return [int(holding[i]) for i in np.unique(picks)]


#: height in pixels of the montage's caption band (which slices it shows)
CAPTION_HEIGHT = 14


def montage_caption(labels: np.ndarray, slices: list[int]) -> str:
    """What a montage of ``slices`` shows of ``labels``: all the slices that hold labels, or
    which of them it leaves out (slice numbers 0-based, as on the tiles)."""
    labels = np.asarray(labels)
    holding = [int(z) for z in np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))]
    if not holding:
        return f"no labels: slice z={slices[0]} of {labels.shape[0]} shown" if slices else "no labels"
    if len(slices) == len(holding):
        return f"all {len(holding)} slices holding labels shown (z={holding[0]}-{holding[-1]})"
    left = [z for z in holding if z not in set(slices)]
    listed = ", ".join(map(str, left[:12])) + (", ..." if len(left) > 12 else "")
    return f"{len(slices)} of {len(holding)} slices holding labels shown; left out z={listed}"


def radiological_flips(direction: tuple[float, ...] | None) -> tuple[bool, bool]:
    """(flip rows, flip columns) that show a slice of a volume with ITK/LPS ``direction``
    (row-major 3x3, see :class:`~medsam.io.geometry.Geometry`) in the radiological
    convention: posterior at the bottom, the patient's right on the image's left."""
    if not direction or len(direction) != 9:
        return False, False
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    return bool(d[1, 1] < 0), bool(d[0, 0] < 0)


def overlay_montage_rgb(volume: np.ndarray, labels: np.ndarray, max_slices: int = 16,
                        alpha: float = 0.35, direction: tuple[float, ...] | None = None,
                        min_tile: int = 192) -> np.ndarray:
    """A grid of :func:`overlay_rgb` tiles, one per slice holding a label (see
    :func:`montage_slices`), each tile numbered with its slice (0-based, top left), under
    a caption band (:data:`CAPTION_HEIGHT` pixels) saying which slices are shown and
    which are left out (:func:`montage_caption`).

    Args:
        volume: ``(z, y, x)`` image, shown with one display range for all slices
            (uint8 as it is; other types clipped to the volume's 0.5-99.5th percentiles).
        labels: ``(z, y, x)`` integer label map.
        direction: the volume's direction (``Geometry.direction``); slices are then
            shown as a radiologist would (see :func:`radiological_flips`).
        min_tile: small slices are enlarged (nearest neighbour, whole factors) to at
            least this many pixels on their longer side.
    Returns:
        uint8 RGB grid; an all-background label map gives the middle slice alone.
    """
    from PIL import Image, ImageDraw

    volume, labels = np.asarray(volume), np.asarray(labels)
    if volume.ndim != 3 or volume.shape != labels.shape:
        raise ValueError(f"volume {volume.shape} and labels {labels.shape} must be the same "
                         f"(z, y, x) shape")
    shown = display_uint8(volume.reshape(volume.shape[0] * volume.shape[1], -1))
    shown = shown.reshape(*volume.shape, 3)
    slices = montage_slices(labels, max_slices) or [volume.shape[0] // 2]
    columns = int(np.ceil(np.sqrt(len(slices))))
    rows = int(np.ceil(len(slices) / columns))
    flip_rows, flip_cols = radiological_flips(direction)
    scale = max(1, -(-min_tile // max(volume.shape[1:])))
    h, w = volume.shape[1] * scale, volume.shape[2] * scale
    band = Image.new("RGB", (columns * w, CAPTION_HEIGHT))
    ImageDraw.Draw(band).text((3, 1), montage_caption(labels, slices), fill=(255, 255, 255))
    canvas = np.zeros((CAPTION_HEIGHT + rows * h, columns * w, 3), dtype=np.uint8)
    canvas[:CAPTION_HEIGHT] = np.asarray(band)
    for i, z in enumerate(slices):
        rgb = overlay_rgb(shown[z], labels[z], alpha=alpha)
        rgb = rgb[::-1 if flip_rows else 1, ::-1 if flip_cols else 1]
        tile = Image.fromarray(np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1))
        ImageDraw.Draw(tile).text((3, 2), f"z={z}", fill=(255, 255, 0))
        r, c = divmod(i, columns)
        top = CAPTION_HEIGHT + r * h
        canvas[top:top + h, c * w:(c + 1) * w] = np.asarray(tile)
    return canvas


def write_overlay_montage(volume: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                          max_slices: int = 16, direction: tuple[float, ...] | None = None,
                          overwrite: bool = False) -> Path:
    """Write :func:`overlay_montage_rgb` of a volume and its label map to a PNG, atomically."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"{path}: overlays are written as .png")
    rgb = overlay_montage_rgb(volume, labels, max_slices=max_slices, direction=direction)
    with atomic_path(path, overwrite=overwrite) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")
    return path
