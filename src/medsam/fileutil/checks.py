"""Checks of outputs and folders before any work, and the one-line error of a failed write."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError, OutputError, first_line


def existing_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` as a Path when it is an existing folder; InputError saying whether it is
    missing or a file. ``what`` names the folder's role in the message
    (``"reference folder"``)."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise InputError(f"{path}: is a file, not a {what}")
    raise InputError(f"{path}: {what} does not exist")


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
        raise InputError(f"{path}: is a file, not a folder")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    _check_folder_writable(path)
    return path


def _check_folder_writable(path: Path) -> None:
    """InputError unless the folder that will hold ``path`` exists or can be created, and
    a file can be created in it (tried for real: permissions and mount flags do not tell
    of every file system that refuses files, ``/proc`` for one)."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{path}: cannot be written: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or _read_only(folder):
        raise InputError(f"{path}: cannot be written: no permission to write in {folder}")
    try:
        fd, probe = tempfile.mkstemp(prefix=".medsam-probe-", dir=folder)
    except OSError as exc:
        raise InputError(f"{path}: cannot be written: {folder} refuses new files "
                         f"({_reason(exc)})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _read_only(folder: Path) -> bool:
    """True when ``folder`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def _reason(exc: OSError) -> str:
    """The reason of an OSError in words, without the path it names (that may be a
    temporary name the user never gave)."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return first_line(exc)


def write_failure(path: str | os.PathLike, exc: OSError | None = None, reason: str | None = None
                  ) -> OutputError:
    """The OutputError for ``path`` failing to be written, for ``exc`` or ``reason``; a
    full file system is named as such even when the writer's own error does not say so."""
    path = _as_named(Path(path))
    if reason is None:
        reason = _reason(exc) if exc is not None else "the write did not complete"
    if (exc is None or exc.errno != errno.ENOSPC) and disk_full(path.parent) \
            and "no space" not in reason:
        reason = f"{reason} (the file system is full)"
    return OutputError(f"{path}: cannot be written: {reason}")


def _as_named(path: Path) -> Path:
    """``path`` as the user will see it: a file inside a folder that :func:`atomic_folder`
    is building is named under the folder's final name, not its temporary one."""
    for tmp, final in reversed(_FOLDERS.get()):
        if path == tmp or tmp in path.parents:
            return final / path.relative_to(tmp)
    return path


def disk_full(folder: str | os.PathLike) -> bool:
    """True when the file system holding ``folder`` has no block left for this user."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail == 0


#: (temporary folder, final folder) of the :func:`atomic_folder` blocks now open
_FOLDERS: contextvars.ContextVar[tuple[tuple[Path, Path], ...]] = contextvars.ContextVar(
    "medsam_folders", default=())


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
