"""Files in and out of the web app: uploads to a readable case, and the viewer's image.

An upload is one file (NIfTI, NRRD, MHA, PNG/JPEG/TIFF/BMP, challenge npz, or a zip of a
DICOM series), or several files: the slices of a DICOM series (a folder picked in the
browser), or an ``.mhd`` header with its data file. :func:`case_path` turns the saved files
into the path :func:`medsam.segmentation.load_case` reads.

:func:`viewer_nifti` writes the image as NIfTI for the browser viewer (NiiVue), in the
same geometry as the label maps, RGB images as NIfTI's RGB24 type.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..errors import InputError, first_line
from ..io import Geometry
from ..io.dispatch import extension

#: NIfTI-1 datatype code and bits per voxel of 8-bit RGB triplets
NIFTI_RGB24 = (128, 24)


def safe_name(name: str) -> str:
    """The last part of an uploaded file's name, refused when it could leave the folder.

    Raises:
        InputError: empty, hidden or odd names.
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    if not base or base in (".", "..") or base.startswith(".") or "\x00" in base:
        raise InputError(f"{name!r}: not a usable file name")
    return base


def extract_zip(path: Path, folder: Path, max_bytes: int) -> Path:
    """Extract a zip (a DICOM series) into ``folder`` and return it.

    The sizes in the zip's headers are not trusted: the bytes actually extracted are
    counted against ``max_bytes``, and a member whose data do not match its header (size,
    checksum, compression) is refused.

    Raises:
        InputError: not a zip, member paths leaving the folder, a damaged or lying member,
            or more than ``max_bytes`` once extracted.
    """
    import zlib

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path.name}: not a readable zip file ({exc})") from None
    too_big = InputError(f"{path.name}: more than {max_bytes / 2**20:.0f} MiB once extracted; this "
                         f"server takes {max_bytes / 2**20:.0f} MiB")
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > max_bytes:
            raise too_big
        folder.mkdir(parents=True, exist_ok=True)
        left = max_bytes
        for i, member in enumerate(members):
            parts = PurePosixPath(member.filename).parts
            if member.filename.startswith("/") or ".." in parts:
                raise InputError(f"{path.name}: member {member.filename!r} points outside the archive")
            if parts[-1].startswith(".") or "__MACOSX" in parts:
                continue
            try:
                with archive.open(member) as src, \
                        open(folder / f"{i:06d}_{safe_name(parts[-1])}", "wb") as dst:
                    while chunk := src.read(1 << 20):
                        left -= len(chunk)
                        if left < 0:
                            raise too_big
                        dst.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                    ValueError) as exc:
                raise InputError(f"{path.name}: member {member.filename!r} is damaged or does not "
                                 f"match its header ({first_line(exc)})") from None
    return folder


def case_path(files: list[Path], folder: Path, max_bytes: int) -> Path:
    """The readable case among saved upload ``files`` (all in ``folder``).

    Raises:
        InputError: nothing uploaded.
    """
    if not files:
        raise InputError("no file uploaded")
    if len(files) == 1:
        only = files[0]
        return extract_zip(only, folder / "series", max_bytes) if extension(only) == ".zip" else only
    headers = [f for f in files if extension(f) in (".mhd", ".nhdr")]
    return headers[0] if len(headers) == 1 else folder   # several files: a DICOM series


def viewer_nifti(image: np.ndarray, geometry: Geometry, path: Path) -> Path:
    """Write ``image`` as gzipped NIfTI for the viewer, in ``geometry`` (RGB as RGB24)."""
    from ..io import write

    rgb = image.ndim == geometry.ndim + 1
    if not rgb:
        return write(image, path, geometry, overwrite=True)
    grey = np.ascontiguousarray(image[..., 0])
    plain = path.with_name(path.name.replace(".nii.gz", ".grey.nii"))
    write(grey, plain, geometry, overwrite=True)
    header = bytearray(plain.read_bytes()[:352])
    plain.unlink()
    code, bits = NIFTI_RGB24
    struct.pack_into("<hh", header, 70, code, bits)
    struct.pack_into("<f", header, 108, 352.0)           # vox_offset: data right after the header
    struct.pack_into("<ff", header, 112, 1.0, 0.0)       # scl_slope, scl_inter: values as stored
    data = np.clip(image, 0, 255).astype(np.uint8).tobytes()   # (y, x, 3) C order: x fastest, RGB triplets
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wb", compresslevel=1) as fh:
        fh.write(bytes(header) + data)
    os.replace(tmp, path)
    return path


def public_message(text: str, root: Path) -> str:
    """``text`` with every path under the server's folder ``root`` replaced by what the
    user knows it as: an uploaded file by the name it was uploaded under (a zip member by
    its own name), the upload folder (a DICOM series) as "the uploaded series". Error
    responses never show the server's paths."""
    import re

    def named(match: re.Match) -> str:
        parts = PurePosixPath(match.group(0)).parts
        if "upload" not in parts:
            return parts[-1] if len(parts) > len(PurePosixPath(root).parts) else "the server's files"
        rest = parts[parts.index("upload") + 1:]
        if rest[:1] == ("series",):
            rest = rest[1:]
        if not rest:
            return "the uploaded series"
        return re.sub(r"^\d{6}_", "", rest[-1])

    return re.sub(re.escape(str(root)) + r"(/[^\s:'\",()]*)?", named, text)


def describe_upload(names: list[str]) -> str:
    """A short description of what was uploaded, for messages."""
    return names[0] if len(names) == 1 else f"{len(names)} files ({names[0]}, ...)"


def save_upload(chunks: Any, target: Path, budget: list[int]) -> None:
    """Write an iterable of byte ``chunks`` to ``target``, counting against ``budget[0]`` bytes.

    Raises:
        InputError: the budget runs out (the upload is too large).
    """
    with open(target, "wb") as fh:
        for chunk in chunks:
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise InputError(f"{target.name}: the upload is larger than this server takes")
            fh.write(chunk)
