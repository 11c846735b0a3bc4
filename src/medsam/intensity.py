"""Intensity normalisation to the 8-bit, 3-channel images MedSAM was trained on.

Following the MedSAM paper (Methods, "Data preprocessing") and its ``pre_CT_MR.py``:

* CT: Hounsfield units are windowed (a named preset such as ``abdomen`` = level 40,
  width 400, or a user level/width), then rescaled to [0, 255].
* MR, X-ray, ultrasound, mammography, OCT (and PET): intensities are clipped to the
  0.5th-99.5th percentiles of the positive values, then rescaled to [0, 255];
  zero (background) pixels stay 0.
* RGB modalities (endoscopy, dermoscopy, fundus, pathology): kept as they are when
  already inside [0, 255], otherwise min-max rescaled to [0, 255].
* Grey images are repeated to 3 channels.

Conversion to uint8 truncates, as ``np.uint8(...)`` does in MedSAM's scripts.
CT windowing maps [level - width/2, level + width/2] linearly onto [0, 255];
``pre_CT_MR.py`` instead min-max rescales the clipped volume, which is the same
whenever the data reach both window limits (any CT with air and bone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    from .io.geometry import Geometry


@dataclass(frozen=True)
class CTWindow:
    """A CT display window in Hounsfield units: [level - width/2, level + width/2]."""

    level: float
    width: float

    @property
    def bounds(self) -> tuple[float, float]:
        return self.level - self.width / 2, self.level + self.width / 2


# https://radiopaedia.org/articles/windowing-ct (as cited by the MedSAM paper)
CT_WINDOWS: dict[str, CTWindow] = {
    "abdomen": CTWindow(level=40, width=400),
    "soft_tissue": CTWindow(level=40, width=400),
    "lung": CTWindow(level=-600, width=1500),
    "brain": CTWindow(level=40, width=80),
    "bone": CTWindow(level=400, width=1800),
    "mediastinum": CTWindow(level=50, width=350),
    "liver": CTWindow(level=60, width=150),
}

PERCENTILE_MODALITIES = frozenset({"mr", "xray", "us", "mammo", "oct", "pet"})
RGB_MODALITIES = frozenset({"endoscopy", "dermoscopy", "fundus", "pathology", "rgb"})
MODALITY_ALIASES = {
    "mri": "mr", "x-ray": "xray", "cxr": "xray", "ultrasound": "us",
    "mammography": "mammo", "histopathology": "pathology", "microscopy": "rgb",
}
MODALITIES = frozenset({"ct"}) | PERCENTILE_MODALITIES | RGB_MODALITIES
PERCENTILES = (0.5, 99.5)


def canonical_modality(modality: str) -> str:
    """Lower-cased modality name with aliases resolved; ValueError when unknown."""
    name = MODALITY_ALIASES.get(modality.lower(), modality.lower())
    if name not in MODALITIES:
        known = ", ".join(sorted(MODALITIES | set(MODALITY_ALIASES)))
        raise InputError(f"unknown modality {modality!r}; known: {known}")
    return name


def resolve_window(window: str | None = None, level: float | None = None,
                   width: float | None = None) -> CTWindow:
    """The CT window from a preset name or a level/width pair (default ``abdomen``)."""
    if (level is None) != (width is None):
        raise InputError("give both CT window level and width, or neither")
    if level is not None and width is not None:
        if window is not None:
            raise InputError("give a CT window preset or a level/width, not both")
        if not width > 0:
            raise InputError(f"CT window width must be positive, got {width}")
        return CTWindow(level=float(level), width=float(width))
    name = window or "abdomen"
    try:
        return CT_WINDOWS[name]
    except KeyError:
        raise InputError(f"unknown CT window {name!r}; presets: {', '.join(CT_WINDOWS)}") \
            from None


def window_ct(image: np.ndarray, window: CTWindow) -> np.ndarray:
    """Clip HU to the window and map it linearly to [0, 255] (float64)."""
    low, high = window.bounds
    return (np.clip(image.astype(np.float64), low, high) - low) / (high - low) * 255.0


def clip_percentiles(image: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
                     ) -> np.ndarray:
    """Clip to percentiles of the positive values, rescale to [0, 255] (float64);
    pixels equal to 0 stay 0. Without positive values the whole image is used."""
    image = image.astype(np.float64)
    positive = image[image > 0]
    sample = positive if positive.size else image.ravel()
    low, high = np.percentile(sample, percentiles)
    out = np.clip(image, low, high)
    out = (out - out.min()) / max(out.max() - out.min(), 1e-8) * 255.0
    out[image == 0] = 0
    return out


def rescale_rgb(image: np.ndarray) -> np.ndarray:
    """Unchanged when inside [0, 255], else min-max to [0, 255] (float64)."""
    image = image.astype(np.float64)
    low, high = image.min(), image.max()
    if low >= 0 and high <= 255:
        return image
    return (image - low) / max(high - low, 1e-8) * 255.0


def to_three_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) by repetition; (H, W, 3) unchanged; (H, W, 4) drops alpha."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=-1)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=-1)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]
    raise InputError(f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                     f"got {image.shape}")


def _check_real(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.size == 0:
        raise InputError("image is empty")
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number) \
            or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"image must hold real numbers, got dtype {image.dtype}")
    if not np.all(np.isfinite(image)):
        raise InputError("image contains NaN or infinite values")
    return image


def _normalize_values(image: np.ndarray, modality: str, window: str | None,
                      level: float | None, width: float | None) -> np.ndarray:
    name = canonical_modality(modality)
    if name != "ct" and (window is not None or level is not None or width is not None):
        raise InputError(f"a CT window was given for modality {modality!r}")
    if name == "ct":
        out = window_ct(image, resolve_window(window, level, width))
    elif name in PERCENTILE_MODALITIES:
        out = clip_percentiles(image)
    else:
        out = rescale_rgb(image)
    return out.astype(np.uint8)


def normalize_intensity(image: np.ndarray, modality: str, window: str | None = None,
                        level: float | None = None, width: float | None = None) -> np.ndarray:
    """Normalise a 2D image as MedSAM's training data were: returns uint8 (H, W, 3).

    ``image``: (H, W) grey or (H, W, 3) RGB, any real dtype (CT in Hounsfield units).
    ``modality``: ``ct``, ``mr``, ``xray``, ``us``, ``mammo``, ``oct``, ``pet``,
    ``endoscopy``, ``dermoscopy``, ``fundus``, ``pathology`` or ``rgb`` (aliases
    such as ``mri``, ``ultrasound`` accepted). ``window`` (a :data:`CT_WINDOWS`
    name) or ``level`` and ``width`` (HU) choose the CT window; default abdomen.
    """
    image = _check_real(image)
    if image.ndim not in (2, 3):
        raise InputError(f"expected a 2D image (H, W) or (H, W, 3), got shape {image.shape}")
    return to_three_channels(_normalize_values(image, modality, window, level, width))


def normalize_volume(volume: np.ndarray, modality: str, window: str | None = None,
                     level: float | None = None, width: float | None = None) -> np.ndarray:
    """Normalise a 3D grey volume (z, y, x) as a whole (percentiles over the whole
    volume, as MedSAM's ``pre_CT_MR.py`` does); returns uint8 (z, y, x). Slices are
    repeated to 3 channels later, when each is segmented."""
    volume = _check_real(volume)
    if volume.ndim != 3:
        raise InputError(f"expected a volume of shape (z, y, x), got shape {volume.shape}")
    return _normalize_values(volume, modality, window, level, width)


def prepare_intensities(image: np.ndarray, geometry: Optional["Geometry"] = None,
                        modality: str | None = None, window: str | None = None,
                        level: float | None = None, width: float | None = None) -> np.ndarray:
    """Raw values -> the uint8 range MedSAM was trained on: the one intensity step of
    inference (CLI, API, predictor), evaluation and training-data curation.

    Volumes (``geometry.ndim == 3``) are normalised as a whole (:func:`normalize_volume`),
    2D images (also when ``geometry`` is None) with :func:`normalize_intensity`. Without
    a modality, uint8 images (PNG/JPEG photos, challenge npz files) are used as they
    are; other data need one (``ct``, ``mr``, ...); a CT window alone implies ``ct``.

    Returns:
        uint8 ``(z, y, x)`` for volumes, ``(y, x, 3)`` for 2D images.
    """
    image = np.asarray(image)
    if modality is None:
        if window is not None or level is not None or width is not None:
            modality = "ct"
        elif image.dtype == np.uint8:
            return image
        else:
            raise InputError(f"image values are {image.dtype} in "
                             f"{float(np.nanmin(image)):g}..{float(np.nanmax(image)):g}",
                             option="modality")
    if geometry is not None and geometry.ndim == 3:
        return normalize_volume(image, modality, window=window, level=level, width=width)
    return normalize_intensity(image, modality, window=window, level=level, width=width)
