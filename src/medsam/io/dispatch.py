"""One reader / writer interface for every supported format, chosen by extension or folder.

``read(path) -> (array, Geometry)`` and ``write(array, path, geometry)``; a folder is
read as a DICOM series. Array and geometry conventions are those of
:mod:`medsam.io.geometry`: arrays ``(z, y, x)`` / ``(y, x)[, 3]``, spacing in array axis
order (mm), origin and direction in ITK/LPS world terms.

DICOM is written as a DICOM SEG of its source series only (:func:`write_labels` with a
``.dcm`` path, :mod:`.dicom_seg`), and a ``.dcm`` that is a SEG reads as its label map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..errors import InputError
from .geometry import Geometry
from .npz import NPZ_EXTENSIONS, read_npz, write_npz
from .raster import RASTER_READ_EXTENSIONS, RASTER_WRITE_EXTENSIONS, read_raster, write_raster
from .values import as_label_map, check_finite
from .volume import DICOM_EXTENSIONS, VOLUME_EXTENSIONS, read_dicom_series, read_volume, write_volume

if TYPE_CHECKING:
    from .dicom_seg import SegSource
    from .segments import Code

_READ = {
    **{e: "volume" for e in VOLUME_EXTENSIONS + DICOM_EXTENSIONS},
    **{e: "raster" for e in RASTER_READ_EXTENSIONS},
    **{e: "npz" for e in NPZ_EXTENSIONS},
}
_WRITE = {
    **{e: "volume" for e in VOLUME_EXTENSIONS},
    **{e: "raster" for e in RASTER_WRITE_EXTENSIONS},
    **{e: "npz" for e in NPZ_EXTENSIONS},
}


def extension(path: str | os.PathLike) -> str:
    """The lower-case format extension of ``path``, including ``.nii.gz``."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def supported_extensions(mode: str = "read") -> tuple[str, ...]:
    """File extensions that :func:`read` (``mode="read"``) or :func:`write` (``"write"``)
    accept. Folders (DICOM series) are read too."""
    if mode not in ("read", "write"):
        raise ValueError(f"mode must be 'read' or 'write', got {mode!r}")
    return tuple(sorted(_READ if mode == "read" else _WRITE))


def is_supported(path: str | os.PathLike) -> bool:
    """True for a folder or a file with a readable extension (existence not checked)."""
    return Path(path).is_dir() or extension(path) in _READ


def read(path: str | os.PathLike, series_id: str | None = None) -> tuple[np.ndarray, Geometry]:
    """Read an image or mask.

    Args:
        path: a file (by extension: NIfTI, NRRD, MHA/MHD, DICOM file, PNG/JPEG/BMP/TIFF/GIF,
            challenge npz) or a folder holding one DICOM series.
        series_id: picks a series in a DICOM folder that holds several.
    Returns:
        ``(array, geometry)``: ``(z, y, x)`` volumes, ``(y, x)`` or ``(y, x, 3)`` images.
    Raises:
        InputError: missing path, unsupported extension, unreadable or corrupt file,
            NaN or infinite voxels, DICOM folder with no or several series.
        TooLargeError: the file declares more than :func:`medsam.io.bounds.current_limits`
            allows (checked before its data are decoded), or memory runs out reading it.
    """
    from .bounds import out_of_memory

    try:
        return _read(path, series_id)
    except (MemoryError, RecursionError) as exc:
        raise out_of_memory(path, exc) from None


def _read(path: str | os.PathLike, series_id: str | None = None) -> tuple[np.ndarray, Geometry]:
    path = Path(path)
    if path.is_dir():
        array, geometry = read_dicom_series(path, series_id=series_id)
        check_finite(array, path)
        return array, geometry
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    kind = _READ.get(extension(path))
    if kind is None:
        raise InputError(f"{path}: unsupported file type {extension(path) or '(no extension)'!r}; "
                         f"supported: {', '.join(supported_extensions())} or a DICOM folder")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")
    if kind == "volume" and extension(path) in DICOM_EXTENSIONS:
        from .dicom_seg import is_dicom_seg, read_dicom_seg

        if is_dicom_seg(path):
            return read_dicom_seg(path)
    if kind == "volume":
        array, geometry = read_volume(path)
    elif kind == "raster":
        array, geometry = read_raster(path)
    else:
        case = read_npz(path)  # checks its values itself
        return case.image, case.geometry
    check_finite(array, path)
    return array, geometry


def write(array: np.ndarray, path: str | os.PathLike, geometry: Geometry | None = None,
          overwrite: bool = False) -> Path:
    """Write ``array`` with ``geometry`` to ``path`` (format by extension), atomically.

    ``geometry`` defaults to the identity geometry of the array's dimension. Bool arrays
    are written as uint8. An existing file is an error unless ``overwrite``.

    Raises:
        InputError: unsupported extension, existing output, values the format cannot hold.
        ValueError: array shape does not match the geometry.
    """
    path = Path(path)
    kind = _WRITE.get(extension(path))
    if extension(path) in (".jpg", ".jpeg"):
        raise InputError(f"{path}: JPEG is lossy and would change label values; write .png instead")
    if kind is None:
        raise InputError(f"{path}: cannot write {extension(path) or '(no extension)'!r} files; "
                         f"supported: {', '.join(supported_extensions('write'))}")
    array = np.asarray(array)
    if geometry is None:
        ndim = 2 if array.ndim == 3 and array.shape[-1] == 3 and kind == "raster" else array.ndim
        geometry = Geometry.default(ndim)
    geometry.check_shape(array.shape)
    if kind == "volume":
        return write_volume(array, path, geometry, overwrite=overwrite)
    if kind == "raster":
        return write_raster(array, path, geometry, overwrite=overwrite)
    return write_npz(array, path, geometry, overwrite=overwrite)


def write_labels(labels: np.ndarray, path: str | os.PathLike, geometry: Geometry | None = None,
                 overwrite: bool = False, names: Mapping[int, str] | None = None,
                 codes: Mapping[int, tuple[Code, Code]] | None = None, dicom: SegSource | None = None) -> Path:
    """Write a label map (0 = background) as uint8/uint16 in ``geometry`` (see :func:`write`).

    Objects are described (:func:`~.segments.segments_of`) by ``names[label]`` (else
    ``label <n>``) and ``codes[label]`` (category, type; else the generic "Tissue"):

    * a ``.seg.nrrd`` carries 3D Slicer's segment fields: name, colour, label value,
      layer and extent;
    * a ``.dcm`` is a DICOM SEG of the source series ``dicom`` (:mod:`.dicom_seg`).

    Raises:
        InputError: as :func:`write`; a ``.dcm`` without its source series.
    """
    label_map = as_label_map(labels)
    name = Path(path).name.lower()
    if name.endswith(".seg.nrrd") or extension(path) in DICOM_EXTENSIONS:
        from .segments import segments_of

        segments = segments_of(label_map, names, codes)
        if extension(path) in DICOM_EXTENSIONS:
            from .dicom_seg import write_dicom_seg

            if dicom is None:
                raise InputError(f"{path}: a DICOM SEG is written for a DICOM input (a series or a DICOM "
                                 f"file), which it references; write this label map as .nii.gz or .nrrd")
            return write_dicom_seg(label_map, path, dicom.sources, segments, dicom.algorithm, overwrite)
        from .segments import slicer_fields

        if label_map.ndim != 3:
            raise InputError(f"{path}: a .seg.nrrd holds a 3D segmentation (3D Slicer's format); write a "
                             f"2D label map as .png or .nrrd")
        if geometry is None:
            geometry = Geometry.default(3)
        geometry.check_shape(label_map.shape)
        return write_volume(label_map, path, geometry, overwrite=overwrite,
                            fields=slicer_fields(label_map, segments))
    return write(label_map, path, geometry, overwrite=overwrite)
