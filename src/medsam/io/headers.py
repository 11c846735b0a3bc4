"""Checks of MetaImage (.mha/.mhd) and NRRD (.nrrd/.nhdr) files before ITK reads them,
and plain-language reasons for ITK's read errors.

ITK's messages name its own classes (``NrrdImageIO(0x55...)``), drop the real reason, or
give a wrong one (a truncated ``.mha`` is reported as "No such file or directory"). The
header of these formats is text, so the file's expected size and its detached data
file can be checked here first, and the message says what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from .bounds import check_declared
from .values import check_spacing

_META_TYPES = {"MET_UCHAR": 1, "MET_CHAR": 1, "MET_USHORT": 2, "MET_SHORT": 2, "MET_UINT": 4,
               "MET_INT": 4, "MET_ULONG": 8, "MET_LONG": 8, "MET_ULONG_LONG": 8,
               "MET_LONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _text_header(path: Path, limit: int = 65536) -> tuple[list[str], int] | None:
    """The header lines and the byte offset where the data start, for text headers."""
    with open(path, "rb") as fh:
        head = fh.read(limit)
    lines, offset = [], 0
    for raw in head.split(b"\n"):
        offset += len(raw) + 1
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        lines.append(line)
        if line.lower().startswith("elementdatafile") or (line == "" and lines[0].startswith("NRRD")):
            return lines, offset
    return lines, len(head)


def check_metaimage(path: Path) -> None:
    """Raise InputError when a MetaImage header names a missing data file, declares more
    voxels than :func:`medsam.io.bounds.current_limits` allows, or when its uncompressed
    voxel data are shorter than the header says."""
    parsed = _text_header(path)
    if parsed is None:
        return
    lines, offset = parsed
    fields = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    for key in ("elementspacing", "elementsize"):
        if key in fields:
            try:
                values = [float(v) for v in fields[key].split()]
            except ValueError:
                raise InputError(f"{path}: {key} {fields[key]!r} is not a list of numbers") from None
            check_spacing(values, path, "ElementSpacing" if key == "elementspacing" else "ElementSize")
    data_file = fields.get("elementdatafile")
    if data_file is None:
        raise InputError(f"{path}: MetaImage header without ElementDataFile (not a complete image)")
    if data_file.upper() in ("LOCAL", "LIST") or "%" in data_file:
        data, start = path, offset
    else:
        data, start = path.parent / data_file, 0
        if not data.is_file():
            raise InputError(f"{path}: its data file {data} does not exist")
    try:
        dims = [int(v) for v in fields.get("dimsize", "").split()]
        size = _META_TYPES[fields.get("elementtype", "").upper()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        return
    check_declared(path, "the image", dims[::-1], size * max(channels, 1))
    if fields.get("compresseddata", "false").lower() == "true":
        return
    expected = size * channels
    for d in dims:
        expected *= d
    available = data.stat().st_size - start
    if available < expected:
        raise InputError(f"{path}: truncated image data ({max(available, 0)} of {expected} bytes"
                         + (f" in {data}" if data != path else "") + ")")


def check_nrrd(path: Path) -> None:
    """Raise InputError when a NRRD header names a detached data file that does not exist."""
    parsed = _text_header(path)
    if parsed is None or not parsed[0] or not parsed[0][0].startswith("NRRD"):
        return
    for line in parsed[0]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "spacings":
            _check_nrrd_spacings(value, path)
        if sep and key.strip().lower() == "space directions":
            _check_nrrd_directions(value, path)
        if sep and key.strip().lower() in ("data file", "datafile") and value.strip():
            name = value.strip()
            if name.upper().startswith("LIST") or "%" in name:
                return
            data = Path(name) if Path(name).is_absolute() else path.parent / name
            if not data.is_file():
                raise InputError(f"{path}: its data file {data} does not exist")


def _check_nrrd_spacings(value: str, path: Path) -> None:
    try:
        values = [float(v) for v in value.split()]
    except ValueError:
        raise InputError(f"{path}: spacings {value.strip()!r} is not a list of numbers") from None
    check_spacing(values, path, "spacings")


def _check_nrrd_directions(value: str, path: Path) -> None:
    """Each axis vector of ``space directions`` (``none`` for a non-spatial axis) must
    have a finite length > 0: its length is the voxel size."""
    import math

    lengths = []
    for vector in re.findall(r"\(([^)]*)\)", value):
        try:
            parts = [float(v) for v in vector.split(",")]
        except ValueError:
            raise InputError(f"{path}: space directions {value.strip()!r} is not a list of "
                             f"vectors") from None
        lengths.append(math.sqrt(sum(v * v for v in parts)) if all(map(math.isfinite, parts))
                       else float("nan"))
    check_spacing(lengths, path, "space directions (vector lengths)")


def itk_reason(exc: BaseException) -> str:
    """The informative part of a SimpleITK error, without ITK's class names and addresses."""
    text = str(exc)
    found = re.search(r"got only (\d+) (\d+)-sized things, not (\d+)", text)
    if found:
        got, size, want = (int(v) for v in found.groups())
        return f"the voxel data end early: {got * size} of {want * size} bytes"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception thrown in SimpleITK")
             and not re.match(r"^/\S+:\d+:$", ln)]
    cleaned = []
    for ln in lines:
        ln = re.sub(r"^ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", ln)
        ln = re.sub(r"^\[\w+\] \w+: ?", "", ln)
        if ln and ln not in ("trouble",) and not ln.endswith(":"):
            cleaned.append(ln.rstrip("."))
    return cleaned[-1] if cleaned else type(exc).__name__
