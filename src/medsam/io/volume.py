"""Volumes through SimpleITK: NIfTI, NRRD, MetaImage (MHA/MHD) and DICOM series.

Arrays come back in array axis order (``(z, y, x)`` for 3D) with a
:class:`~medsam.io.geometry.Geometry` holding spacing (array order), origin and
direction (ITK/LPS). DICOM series are read from a folder with
``ImageSeriesReader``; the slices are sorted by their position along the slice
normal (GDCM's sorter). A folder holding several series is an error listing them,
unless ``series_id`` picks one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..fileutil import atomic_path, existing_folder
from .geometry import Geometry
from .values import check_spacing

#: file extensions (lower case) read and written by SimpleITK
VOLUME_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: single DICOM files (read only; folders are read as series)
DICOM_EXTENSIONS = (".dcm", ".dicom")
#: formats whose header names a separate data file
DETACHED_EXTENSIONS = (".mhd", ".nhdr")


def _sitk() -> Any:
    import SimpleITK as sitk

    return sitk


def _first_line(exc: BaseException) -> str:
    """SimpleITK errors are long multi-line ITK traces: keep the informative line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR" in ln.upper() or "unable" in ln.lower() or "could not" in ln.lower():
            return ln.split(": ", 1)[-1] if ln.count(":") >= 3 else ln
    return lines[-1] if lines else type(exc).__name__


def image_to_array(image: Any, path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Split a SimpleITK image into ``(array, Geometry)``; only 2D and 3D images
    (scalar, or 2D with 3/4 channels) are accepted."""
    dim = image.GetDimension()
    if dim not in (2, 3):
        raise InputError(f"{path}: {dim}D images are not supported (only 2D and 3D)")
    channels = image.GetNumberOfComponentsPerPixel()
    if channels != 1 and not (dim == 2 and channels in (3, 4)):
        if str(path).lower().endswith(".seg.nrrd"):
            raise InputError(f"{path}: a 3D Slicer segmentation with {channels} layers (overlapping segments); "
                             f"medsam reads one-layer label maps: in Slicer, export it as a labelmap volume")
        raise InputError(f"{path}: images with {channels} components per voxel are not supported")
    array = _sitk().GetArrayFromImage(image)
    if channels == 4:  # RGBA -> RGB
        array = array[..., :3]
    return np.ascontiguousarray(array), Geometry.from_sitk(image)


_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of real floating-point voxels


def _nifti_layout(header: bytes) -> tuple[int, int, str | None, tuple[float, ...], tuple[int, ...], int] | None:
    """(bytes the file must hold, data offset, numpy dtype of float voxels or None, the
    spatial ``pixdim`` values, the dimensions, bytes per voxel) of a NIfTI-1/2 header, or
    None if it is not NIfTI."""
    import struct

    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            datatype = struct.unpack(endian + "h", header[70:72])[0]
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = max(int(struct.unpack(endian + "f", header[108:112])[0]), 348)
            pixdim = struct.unpack(endian + "8f", header[76:108])
            break
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            datatype = struct.unpack(endian + "h", header[12:14])[0]
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = max(struct.unpack(endian + "q", header[168:176])[0], 540)
            pixdim = struct.unpack(endian + "8d", header[104:168])
            break
    else:
        return None
    ndim = dims[0]
    if not 1 <= ndim <= 7 or bitpix <= 0:
        return None
    expected = offset + int(np.prod([max(d, 1) for d in dims[1:ndim + 1]])) * bitpix // 8
    floats = _NIFTI_FLOATS.get(datatype)
    return (expected, offset, (endian + floats) if floats else None, tuple(pixdim[1:min(ndim, 3) + 1]),
            tuple(max(int(d), 1) for d in dims[1:ndim + 1]), max(bitpix // 8, 1))


def check_nifti_complete(path: str | os.PathLike) -> None:
    """Raise TooLargeError if a NIfTI header declares more than
    :func:`medsam.io.bounds.current_limits` allows (before anything is decompressed), and
    InputError if a NIfTI file is truncated (ITK silently fills missing voxels),
    holds NaN / infinite voxels (ITK silently reads NaN as 0), or gives a voxel size that
    is zero, negative or not finite (ITK silently makes one up).

    For ``.nii.gz`` the whole gzip stream is decompressed once to count its bytes; files
    of float voxels are read whole once to check them."""
    import gzip
    import zlib

    from .bounds import check_declared

    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    bad = 0
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            layout = _nifti_layout(head)
            if layout is None:
                return  # not NIfTI-1/2: let ITK report what it finds
            expected, offset, floats, pixdim, dims, width = layout
            check_declared(path, "the image", dims[::-1], width)
            check_spacing(pixdim, path, "pixdim")
            if floats is not None:  # the voxels are needed: hold them once
                data = head + fh.read()
                size = len(data)
                voxels = np.frombuffer(data, dtype=floats, offset=offset,
                                       count=max(0, min(size, expected) - offset)
                                       // np.dtype(floats).itemsize)
                bad = int(voxels.size - np.count_nonzero(np.isfinite(voxels)))
            elif opener is open:
                size = path.stat().st_size
            else:
                size = len(head)
                while chunk := fh.read(1 << 22):
                    size += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated file ({exc})") from None
    if size < expected:
        raise InputError(f"{path}: truncated NIfTI file ({size} of {expected} bytes)")
    if bad:
        raise InputError(f"{path}: {bad} voxels are NaN or infinite; replace or mask them "
                         f"before use")


def _declared(reader: Any) -> tuple[list[int], int]:
    """(size in ITK order, bytes per voxel) of an ImageFileReader that read the header."""
    sitk = _sitk()
    component = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    bits = {"8": 1, "16": 2, "32": 4, "64": 8}
    width = next((b for k, b in bits.items() if k in component), 1)
    if "complex" in component:
        width *= 2
    return list(reader.GetSize()), width * max(reader.GetNumberOfComponents(), 1)


def check_volume_size(path: str | os.PathLike, slices: int = 1) -> None:
    """Check the voxels a file's header declares (times ``slices`` files of a series)
    against :func:`medsam.io.bounds.current_limits`, before any voxel is decoded.

    Raises:
        TooLargeError: more than the bounds allow.
    """
    from .bounds import check_declared

    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return   # not readable as an image: the read that follows says why
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    size, width = _declared(reader)
    if slices > 1:
        size = size[:2] + [slices]
    check_declared(path, "the image", size[::-1], width)


def read_volume(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """Read one NIfTI / NRRD / MHA / MHD (or single DICOM) file.

    Returns:
        ``(array, geometry)``: array ``(z, y, x)`` (or ``(y, x)``) in the file's pixel type.
    """
    from .headers import check_metaimage, check_nrrd, itk_reason

    sitk = _sitk()
    name = str(path).lower()
    if name.endswith((".nii", ".nii.gz")):
        check_nifti_complete(path)   # checks the declared size itself, first
    elif name.endswith((".mha", ".mhd")):
        check_metaimage(Path(path))   # checks the declared size
    else:
        if name.endswith((".nrrd", ".nhdr")):
            check_nrrd(Path(path))
        check_volume_size(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: cannot read image ({itk_reason(exc)})") from None
    return image_to_array(image, path)


def write_volume(array: np.ndarray, path: str | os.PathLike, geometry: Geometry,
                 overwrite: bool = False, compress: bool = True, fields: Mapping[str, str] | None = None) -> Path:
    """Write ``array`` (array axis order) with ``geometry`` to a SimpleITK format chosen by
    the extension of ``path``, atomically, and check that the file reads back the same.
    ``fields`` are extra header key/values (NRRD's ``key:=value``: Slicer's segments).

    Raises:
        InputError: ``path`` exists and ``overwrite`` is false, or ITK refuses the data.
        OutputError: the file could not be written completely (a full disk).
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = geometry.to_sitk(array)
    for key, value in (fields or {}).items():
        image.SetMetaData(key, value)
    path = Path(path)
    if str(path).lower().endswith(DETACHED_EXTENSIONS):
        return _write_detached(image, path, overwrite, compress)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _write_checked(image, tmp, path, compress)
    return path


def _write_detached(image: Any, path: Path, overwrite: bool, compress: bool) -> Path:
    """Header + data file formats (.mhd, .nhdr): write both under their final names in a
    temporary folder beside ``path``, then commit the data file(s) and the header together."""
    from ..fileutil import committed_together, write_failure

    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise write_failure(path, exc) from None
    try:
        _write_checked(image, tmpdir / path.name, path, compress)
        files = sorted(f for f in tmpdir.iterdir() if f.name != path.name) + [tmpdir / path.name]
        with committed_together(overwrite):
            for f in files:
                with atomic_path(path.parent / f.name, overwrite) as tmp:
                    os.replace(f, tmp)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def _write_checked(image: Any, tmp: Path, path: Path, compress: bool) -> None:
    """``sitk.WriteImage`` to ``tmp``, then read it back: ITK does not report a short write
    of some formats (NIfTI on a full disk leaves a valid-looking file holding part of the
    voxels), so the file must give back the voxels and geometry written."""
    from ..fileutil import disk_full, write_failure
    from .headers import itk_reason

    sitk = _sitk()
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)   # ITK's own "wrote only n bytes" lines
    try:
        try:
            sitk.WriteImage(image, str(tmp), compress)
        except RuntimeError as exc:
            if disk_full(path.parent):
                raise write_failure(path, reason="no space left on device") from None
            raise InputError(f"{path}: cannot write image ({itk_reason(exc)})") from None
        try:
            back = sitk.ReadImage(str(tmp))
        except RuntimeError:
            back = None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    same = (back is not None and back.GetSize() == image.GetSize()
            and back.GetNumberOfComponentsPerPixel() == image.GetNumberOfComponentsPerPixel()
            and np.allclose(back.GetSpacing(), image.GetSpacing())
            and np.allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-4)
            and np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image)))
    if not same:
        reason = "no space left on device" if disk_full(path.parent) else \
            "the written file does not read back as the image written"
        raise write_failure(path, reason=reason)


# ---------------------------------------------------------------- DICOM
@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series found in a folder."""

    series_id: str
    files: tuple[str, ...]
    description: str = ""
    modality: str = ""

    def summary(self, number: int | None = None) -> str:
        """``#N uid (n files, modality, description)``; ``number``: its place in the folder's
        listing (1-based), which selects it as ``"#N"`` even when it has no id."""
        extra = ", ".join(filter(None, [self.modality, self.description]))
        place = f"#{number} " if number is not None else ""
        return f"{place}{self.series_id or '(no series id)'} ({len(self.files)} files" \
               f"{', ' + extra if extra else ''})"


def _tag(path: str, key: str) -> str:
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""
    except RuntimeError:
        return ""


def list_dicom_series(folder: str | os.PathLike) -> list[DicomSeries]:
    """The DICOM series in ``folder`` (not recursive), each with its files sorted by slice
    position along the slice normal. Raises InputError when the folder holds none."""
    sitk = _sitk()
    folder = existing_folder(folder, "DICOM series folder")
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)   # ITK prints "No Series were found"
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    if not ids:
        raise InputError(f"{folder}: no DICOM series found in this folder")
    series = []
    for sid in ids:
        files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid))
        series.append(DicomSeries(sid, files, _tag(files[0], "0008|103e"), _tag(files[0], "0008|0060")))
    return series


def select_series(folder: str | os.PathLike, series_id: str | None = None,
                  series: list[DicomSeries] | None = None) -> DicomSeries:
    """The series of ``folder`` that ``series_id`` names: its SeriesInstanceUID or ``"#N"``
    (its place in :func:`list_dicom_series`, 1-based); None: the only one.

    Raises:
        InputError: no such series, or several and none named (the message lists them).
    """
    series = list_dicom_series(folder) if series is None else series
    listing = "; ".join(s.summary(i + 1) for i, s in enumerate(series))
    if series_id is not None:
        chosen = [s for s in series if s.series_id == series_id]
        number = series_id[1:] if series_id.startswith("#") else ""
        if not chosen and number.isdigit() and 1 <= int(number) <= len(series):
            chosen = [series[int(number) - 1]]
        if not chosen:
            raise InputError(f"{folder}: no DICOM series {series_id!r} here; found: {listing}")
        return chosen[0]
    if len(series) > 1:
        raise InputError(f"{folder}: holds {len(series)} DICOM series, pick one by its id or its "
                         f"number (\"#1\"): {listing}")
    return series[0]


def read_dicom_series(folder: str | os.PathLike, series_id: str | None = None
                      ) -> tuple[np.ndarray, Geometry]:
    """Read a DICOM series from ``folder`` as ``(array (z, y, x), geometry)``.

    Pixel values are rescaled (RescaleSlope/Intercept: Hounsfield units for CT). Slices are
    ordered by position along the normal, so the geometry's direction and origin describe
    the stacked volume. With several series in the folder, ``series_id`` must name one: its
    SeriesInstanceUID, or ``"#N"``, its place in :func:`list_dicom_series` (1-based; the
    way to pick a series without an id).
    The series must be complete (:func:`medsam.io.series.check_series`): a damaged or
    missing slice would silently change the slice spacing and every volume in mL.
    """
    sitk = _sitk()
    series = list_dicom_series(folder)
    picked = select_series(folder, series_id, series)
    from .series import check_series

    check_series(Path(folder), picked.files, [f for s in series for f in s.files])
    check_volume_size(picked.files[0], slices=len(picked.files))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(picked.files))
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{folder}: cannot read DICOM series ({_first_line(exc)})") from None
    return image_to_array(image, folder)
