"""2D raster images through Pillow: PNG, JPEG, BMP, TIFF, GIF.

Reading returns ``(y, x)`` greyscale or ``(y, x, 3)`` RGB arrays:

* 8-bit grey (``L``) -> uint8; 16-bit grey (``I;16``) -> uint16; 32-bit (``I``) -> uint16
  when the values fit, else int32; float (``F``) -> float32; 1-bit -> uint8 {0, 1}.
* RGBA / LA: the alpha channel is dropped. CMYK / YCbCr -> RGB.
* Palette images (``P``, e.g. GIF masks) -> their colours; when every used colour is
  grey (channels within 4 levels, as in the DRIVE masks) -> uint8 greyscale.
* 16-bit RGB PNG (which Pillow would reduce to 8 bits) is read through SimpleITK.
* Multi-page TIFF / GIF -> a ``(z, y, x)`` stack with a default 3D geometry.

Physical pixel size: when the file states a resolution with a unit (PNG ``pHYs`` in
metres, TIFF/JPEG dpi), ``spacing = 25.4 / dpi`` mm and ``spacing_known`` is True;
otherwise spacing is 1 and ``spacing_known`` False. Writing stores the spacing as dpi
when known (PNG stores whole pixels per metre, so it comes back to ~1e-4 relative).

Writing: PNG / BMP / TIFF. JPEG is refused because it is lossy (label ids would change).
Raster files cannot hold an origin or direction: writing a geometry that has them is an
error (write NIfTI instead).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path
from .bounds import check_declared
from .geometry import Geometry

if TYPE_CHECKING:
    from PIL import Image

RASTER_READ_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
RASTER_WRITE_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")

_GREY_PALETTE_TOLERANCE = 4


def _png_is_16bit_colour(path: Path) -> bool:
    """True for a PNG with 16 bits per channel and colour (RGB / RGBA), read from IHDR."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return (len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n"
            and head[24] == 16 and head[25] in (2, 6))


def _frame_to_array(im: Image.Image, path: Path) -> np.ndarray:
    """One Pillow frame -> numpy array following the module's conventions."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im, dtype=np.uint8)
    if mode in ("L", "RGB"):
        return np.asarray(im)
    if mode in ("LA", "La"):
        return np.asarray(im.getchannel("L"))
    if mode in ("RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"))
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if mode == "I":
        a = np.asarray(im)
        if a.size and a.min() >= 0 and a.max() <= 65535:
            return a.astype(np.uint16)
        return a.astype(np.int32)
    if mode == "F":
        return np.asarray(im, dtype=np.float32)
    if mode in ("P", "PA"):
        palette = np.asarray(im.getpalette("RGB") or [0, 0, 0], dtype=int).reshape(-1, 3)
        used = np.unique(np.asarray(im.getchannel("P") if mode == "PA" else im))
        used = palette[used[used < len(palette)]]
        if np.all(np.abs(used - used.mean(axis=1, keepdims=True)) <= _GREY_PALETTE_TOLERANCE):
            return np.asarray(im.convert("L"))
        return np.asarray(im.convert("RGB"))
    raise InputError(f"{path}: unsupported pixel mode {mode!r}")


def _spacing_from_info(info: dict) -> tuple[tuple[float, float], bool]:
    dpi = info.get("dpi")
    try:
        dx, dy = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return (1.0, 1.0), False
    if dx <= 0 or dy <= 0 or not np.isfinite(dx) or not np.isfinite(dy):
        return (1.0, 1.0), False
    return (25.4 / dy, 25.4 / dx), True  # (y, x)


def read_raster(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Read a PNG / JPEG / BMP / TIFF / GIF file as ``(array, geometry)``.

    Returns:
        ``(y, x)`` or ``(y, x, 3)`` array (``(z, y, x)`` for multi-page files) and a
        2D (3D) :class:`Geometry` with the stated pixel size when the file has one.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.suffix.lower() == ".png" and _png_is_16bit_colour(path):
        from .volume import read_volume

        array, geom = read_volume(path)
        return array, Geometry.default(2, spacing_known=False) if geom.ndim == 2 else geom
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on damaged metadata: not errors
            with Image.open(path) as im:
                spacing, known = _spacing_from_info(im.info)
                n_frames = getattr(im, "n_frames", 1)
                check_declared(path, "the image", (n_frames, im.height, im.width),
                               max(len(im.getbands()), 1) * (2 if im.mode.startswith("I;16") else
                                                             4 if im.mode in ("I", "F") else 1))
                frames = []
                for k in range(n_frames):
                    im.seek(k)
                    frames.append(_frame_to_array(im, path))
    except UnidentifiedImageError:
        raise InputError(f"{path}: not a readable image file (corrupt or wrong extension)") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: too large to read safely ({exc.args[0].split(',')[0]})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    if n_frames == 1:
        return frames[0], Geometry(spacing=spacing, spacing_known=known)
    if len({f.shape for f in frames}) != 1 or frames[0].ndim != 2:
        raise InputError(f"{path}: multi-page images must hold greyscale pages of one size")
    return np.stack(frames), Geometry.default(3, spacing_known=False)


def _to_pil_array(array: np.ndarray, path: Path, ext: str) -> np.ndarray:
    """Cast to a dtype the format can store exactly, or raise."""
    a = np.asarray(array)
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.ndim == 3:
        if a.dtype != np.uint8:
            raise InputError(f"{path}: colour images are written as 8-bit; got {a.dtype}")
        return a
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= 0 and hi <= 65535 and ext != ".bmp":
            return a.astype(np.uint16)
        raise InputError(f"{path}: values {lo}..{hi} do not fit this format; write NIfTI instead")
    if np.issubdtype(a.dtype, np.floating) and ext in (".tif", ".tiff"):
        return a.astype(np.float32)
    raise InputError(f"{path}: cannot store {a.dtype} pixels in {ext}; write NIfTI or TIFF instead")


def write_raster(array: np.ndarray, path: str | os.PathLike, geometry: Geometry | None = None,
                 overwrite: bool = False) -> Path:
    """Write a 2D array (``(y, x)`` grey or ``(y, x, 3)`` RGB) to PNG / BMP / TIFF atomically.

    Integer values 0..255 are stored as 8-bit, up to 65535 as 16-bit (PNG, TIFF); the
    geometry's pixel size is stored as dpi when known.
    """
    from PIL import Image

    path = Path(path)
    ext = path.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        raise InputError(f"{path}: JPEG is lossy and would change label values; write .png instead")
    if ext not in RASTER_WRITE_EXTENSIONS:
        raise InputError(f"{path}: cannot write {ext!r} raster files")
    geometry = geometry or Geometry.default(2)
    array = np.asarray(array)
    geometry.check_shape(array.shape)
    if geometry.ndim != 2 or (array.ndim == 3 and array.shape[-1] != 3):
        raise InputError(f"{path}: raster files hold 2D grey or RGB images, got shape {array.shape}")
    if not (np.allclose(geometry.origin, 0) and np.allclose(geometry.matrix, np.eye(2))):
        raise InputError(f"{path}: {ext} cannot store the image origin/direction; "
                         "write .nii.gz to keep the geometry")
    data = _to_pil_array(array, path, ext)
    im = Image.fromarray(data)
    kwargs: dict[str, object] = {}
    if geometry.spacing_known:
        kwargs["dpi"] = (25.4 / geometry.spacing[1], 25.4 / geometry.spacing[0])
    if ext in (".tif", ".tiff"):
        kwargs["compression"] = "tiff_deflate"
    with atomic_path(path, overwrite=overwrite) as tmp:
        im.save(tmp, format=Image.registered_extensions()[ext], **kwargs)
    return path
