"""Atomic file writing: never leave a half-written output, never clobber by accident."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError


def check_writable_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, raising :class:`InputError` if it exists and
    ``overwrite`` is false, if it is a folder, or if its folder cannot be created or
    written (checked before any work, so that no work is lost at the end)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an output file")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    _check_folder_writable(path)
    return path


def check_output_folder(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Like :func:`check_writable_output` for an output that is a folder (a report)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: exists and is not a folder")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    _check_folder_writable(path)
    return path


def _check_folder_writable(path: Path) -> None:
    """InputError unless the folder that will hold ``path`` exists or can be created, and
    can be written."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot be written: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or _read_only(folder):
        raise InputError(f"{path}: cannot be written: no permission to write in {folder}")


def _read_only(folder: Path) -> bool:
    """True when ``folder`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; on success it is
    renamed to ``path`` (atomic on POSIX), on error it is removed.

    The temporary name keeps the final suffixes (``.nii.gz`` etc.) so writers that
    choose the format by extension work on it.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) if path.suffixes else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            # mkstemp makes the file private (0600); give it the usual mode for new files.
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary folder beside ``path`` (yielded), renamed into place
    when the block succeeds; a failure leaves ``path`` as it was."""
    path = Path(path)
    check_output_folder(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes it private (0700); give it the usual mode
        yield tmp
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
