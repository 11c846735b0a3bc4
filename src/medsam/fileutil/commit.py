"""Outputs that appear whole or not at all: :func:`atomic_path`, :func:`atomic_folder`, and
:func:`committed_together` for several outputs in one commit."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import functools
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import InputError
from .checks import _FOLDERS, _remove, check_output_folder, write_failure
from .locks import _alive, _read_lock, _temporaries


@functools.cache
def _umask() -> int:
    """The process's umask, read once: from ``/proc/self/status`` where the kernel shows
    it (no change to the process), else by setting and restoring it once, at the first
    write. Never flipped around each write: the web server writes from several threads,
    and a file another thread created meanwhile would get mode 0666."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@dataclasses.dataclass
class _Pending:
    tmp: Path
    path: Path
    overwrite: bool


class _Commit:
    """Outputs written inside :func:`committed_together`, renamed into place at its end."""

    def __init__(self, overwrite: bool) -> None:
        self.overwrite = overwrite
        self.pending: list[_Pending] = []


_COMMIT: contextvars.ContextVar[_Commit | None] = contextvars.ContextVar("medsam_commit", default=None)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; when the block succeeds it
    is flushed to the disk and renamed to ``path`` (atomic on POSIX), on error removed.

    The temporary name keeps the final suffixes (``.nii.gz`` etc.) so writers that
    choose the format by extension work on it. Inside :func:`committed_together` the
    rename waits for the end of that block.

    Raises:
        InputError: ``path`` exists and ``overwrite`` is false (checked again at the rename).
        OutputError: the file could not be written (full disk, no permission, ...).
    """
    path = Path(path)
    commit = _COMMIT.get()
    overwrite = overwrite and (commit is None or commit.overwrite)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an output file")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: output exists", option="overwrite")
    suffix = "".join(path.suffixes) if path.suffixes else ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_failure(path, exc) from None
    item = _Pending(Path(tmp), path, overwrite)
    try:
        try:
            yield item.tmp
            _flush(item.tmp)
        except OSError as exc:
            raise write_failure(path, exc) from None
        if commit is not None:
            commit.pending.append(item)
        else:
            _commit([item])
    except BaseException:
        _remove(item.tmp)
        raise


@contextlib.contextmanager
def committed_together(overwrite: bool = True) -> Iterator[None]:
    """Outputs written with :func:`atomic_path` inside the block are renamed into place
    together when it ends without error; if it fails, or one of the renames does, none
    is, and every file the block would have replaced is kept. ``overwrite=False``
    refuses, at the rename, any output that exists by then."""
    if _COMMIT.get() is not None:   # inside another: its commit takes these outputs too
        yield
        return
    commit = _Commit(overwrite)
    token = _COMMIT.set(commit)
    try:
        try:
            yield
        finally:
            _COMMIT.reset(token)
        _commit(commit.pending)
    except BaseException:
        for item in commit.pending:
            _remove(item.tmp)
        raise


def _commit(items: Sequence[_Pending]) -> None:
    """Rename temporary files into place: all of them, or (on any failure) none, with the
    files they would have replaced put back."""
    placed: list[tuple[_Pending, Path | None]] = []
    try:
        for item in items:
            backup = None
            if item.path.is_dir() and not item.path.is_symlink():
                raise write_failure(item.path, reason="a folder of that name is in the way")
            if len(items) > 1 and item.overwrite and item.path.exists():
                backup = item.tmp.with_name(item.tmp.name + ".old")
                os.replace(item.path, backup)
            _place(item)
            placed.append((item, backup))
    except BaseException as exc:
        for item, backup in reversed(placed):
            _remove(item.path)
            if backup is not None:
                os.replace(backup, item.path)
        if isinstance(exc, OSError):
            raise write_failure(items[len(placed)].path, exc) from None
        raise
    for _, backup in placed:
        if backup is not None:
            _remove(backup)


def _place(item: _Pending) -> None:
    """Rename ``item.tmp`` to ``item.path``; without overwrite, a hard link (which fails
    if the name is taken, atomically) refuses a file that appeared during the work."""
    if item.overwrite:
        os.replace(item.tmp, item.path)
        return
    try:
        os.link(item.tmp, item.path)
    except FileExistsError:
        raise InputError(f"{item.path}: output exists (written while this run worked)",
                         option="overwrite") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if item.path.exists():  # no hard links on this file system: check, then rename
            raise InputError(f"{item.path}: output exists (written while this run worked)",
                             option="overwrite") from None
        os.replace(item.tmp, item.path)
        return
    os.unlink(item.tmp)


def _flush(tmp: Path) -> None:
    """Give a finished temporary file the usual mode of new files (mkstemp makes it
    0600) and flush it to the disk, where a full disk may only now show."""
    if not tmp.is_file():
        return
    os.chmod(tmp, 0o666 & ~_umask())
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary folder beside ``path`` (yielded), renamed into place
    when the block succeeds; a failure leaves ``path`` as it was. The files written in
    the block are committed with the folder (never one by one)."""
    path = Path(path)
    check_output_folder(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_folders(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise write_failure(path, exc) from None
    try:
        (tmp / _OWNER).write_text(json.dumps(_owner_record()), encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failure(path, exc) from None
    token = _COMMIT.set(None)
    named = _FOLDERS.set((*_FOLDERS.get(), (tmp, path)))
    try:
        try:
            os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes it private (0700)
            yield tmp
        except OSError as exc:
            raise write_failure(path, exc) from None
        finally:
            _COMMIT.reset(token)
            _FOLDERS.reset(named)
        if path.exists() and not overwrite:
            raise InputError(f"{path}: output exists (written while this run worked)",
                             option="overwrite")
        try:
            (tmp / _OWNER).unlink(missing_ok=True)
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and not overwrite:
                # another run put its folder there between the check above and the rename
                raise InputError(f"{path}: output exists (written while this run worked)",
                                 option="overwrite") from None
            raise write_failure(path, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


#: the file in a temporary folder of :func:`atomic_folder` that names the process writing it
_OWNER = ".medsam-owner.json"


def _owner_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _remove_dead_folders(path: Path) -> None:
    """Remove the temporary folders of ``path`` (``.NAME.XXXXXXXX.tmp`` beside it) whose
    writer no longer runs (a run killed before its rename); a live run's are kept."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp$")
    for leftover in _temporaries(path.parent):
        if not (pattern.match(leftover.name) and leftover.is_dir() and not leftover.is_symlink()):
            continue
        record = _read_lock(leftover / _OWNER)
        if record is not None and not _alive(record):
            shutil.rmtree(leftover, ignore_errors=True)
