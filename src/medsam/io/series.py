"""Completeness of a DICOM series before it becomes a volume.

GDCM, which lists the series of a folder, silently leaves out a file it cannot parse,
and ITK stacks whatever remains: one damaged slice then gives a shorter volume whose
slice spacing is the average over the gap (19 slices at 2.11 mm instead of 20 at
2.0 mm), so every volume in mL computed from it is wrong. :func:`check_series` refuses
such a series and names the files at fault:

* files of the folder that start like DICOM (``DICM`` at byte 128) but belong to no
  series that could be read;
* slices whose orientation or size differ from the first;
* slice positions along the normal that are not evenly spaced (a gap, a duplicate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .values import check_spacing

_POSITION, _ORIENTATION, _ROWS, _COLUMNS = "0020|0032", "0020|0037", "0028|0010", "0028|0011"
_PIXEL_SPACING = "0028|0030"


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def unread_dicom_files(folder: Path, listed: Sequence[str]) -> list[Path]:
    """Files of ``folder`` that look like DICOM but are in none of the ``listed`` files."""
    known = {Path(f).resolve() for f in listed}
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.resolve() not in known and _looks_like_dicom(p))


def _header(path: str) -> dict[str, str]:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(f"{path}: DICOM header cannot be read (damaged file)") from None
    return {key: reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""
            for key in (_POSITION, _ORIENTATION, _ROWS, _COLUMNS, _PIXEL_SPACING)}


def _numbers(text: str, count: int, path: str, what: str) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split("\\")], dtype=float)
    except ValueError:
        values = np.array([])
    if values.size != count or not np.all(np.isfinite(values)):
        raise InputError(f"{path}: DICOM {what} is missing or malformed ({text!r})")
    return values


def check_series(folder: Path, files: Sequence[str], all_listed: Sequence[str],
                 rtol: float = 0.01) -> None:
    """Raise :class:`InputError` naming the files at fault unless the series ``files`` (one
    series of ``folder``; ``all_listed``: the files of every series found there) is a
    complete, evenly spaced stack of same-sized, same-oriented slices.

    ``rtol``: allowed deviation of each gap between neighbouring slices from the median
    gap, relative to it.
    """
    unread = unread_dicom_files(folder, all_listed)
    if unread:
        names = ", ".join(p.name for p in unread[:5]) + (" ..." if len(unread) > 5 else "")
        raise InputError(f"{folder}: {len(unread)} DICOM file(s) could not be read and would be "
                         f"left out of the volume (wrong slice spacing): {names}")
    if not files:
        return
    headers = [_header(f) for f in files] if len(files) > 1 else [_header(files[0])]
    first = headers[0]
    for path, h in zip(files, headers):   # zero, negative or not finite: ITK would make up a size
        if h[_PIXEL_SPACING]:
            check_spacing(_numbers(h[_PIXEL_SPACING], 2, path, "pixel spacing"), path, "PixelSpacing")
        if h[_PIXEL_SPACING] != first[_PIXEL_SPACING]:
            raise InputError(f"{path}: pixel spacing {h[_PIXEL_SPACING]!r} differs from the series' "
                             f"{first[_PIXEL_SPACING]!r} ({files[0]})")
    if len(files) < 2:
        return
    orientation = _numbers(first[_ORIENTATION], 6, files[0], "image orientation")
    for path, h in zip(files, headers):
        if (h[_ROWS], h[_COLUMNS]) != (first[_ROWS], first[_COLUMNS]):
            raise InputError(f"{path}: slice of {h[_ROWS]}x{h[_COLUMNS]} pixels in a series of "
                             f"{first[_ROWS]}x{first[_COLUMNS]} ({files[0]})")
        if not np.allclose(_numbers(h[_ORIENTATION], 6, path, "image orientation"), orientation,
                           atol=1e-4):
            raise InputError(f"{path}: slice orientation differs from the series' ({files[0]})")
    normal = np.cross(orientation[:3], orientation[3:])
    depth = np.array([_numbers(h[_POSITION], 3, f, "image position") @ normal
                      for f, h in zip(files, headers)])
    order = np.argsort(depth)
    gaps = np.diff(depth[order])
    step = float(np.median(gaps))
    if step <= 0:
        raise InputError(f"{folder}: slices share one position; the series holds duplicates")
    for i, gap in enumerate(gaps):
        if abs(gap - step) > rtol * step:
            before, after = files[order[i]], files[order[i + 1]]
            what = "a duplicate slice" if gap < 0.5 * step else \
                f"about {round(gap / step) - 1} missing slice(s)"
            raise InputError(f"{folder}: slices are {step:.4g} mm apart but {Path(before).name} "
                             f"and {Path(after).name} are {gap:.4g} mm apart ({what}); the volume "
                             f"would be distorted")
