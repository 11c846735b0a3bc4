"""Atomic file writing: never leave a half-written output, never clobber by accident."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError


def check_writable_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, raising :class:`InputError` if it exists and
    ``overwrite`` is false, or if its folder cannot be created."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists; pass --overwrite to replace it")
    return path


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
        raise InputError(f"{path}: output exists; pass --overwrite to replace it")
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
