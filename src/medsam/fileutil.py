"""The one write path: outputs appear complete or not at all, never clobber by accident.

Every output of the package is written through :func:`atomic_path` (a file) or
:func:`atomic_folder` (a folder): the writer writes a temporary file beside the final
one, which is flushed to the disk (``fsync``) and then renamed into place. Any
``OSError`` on the way (a full disk, a file system that refuses the file) becomes one
:class:`~medsam.errors.OutputError` naming the final path and the reason, and leaves
nothing behind. Writers whose library does not report short writes (ITK) check what
they wrote before the rename (:func:`medsam.io.volume.write_volume`).

``overwrite`` is checked when the file is renamed into place, not only before the work:
without it the rename refuses a file that another run created in the meantime.

:func:`committed_together` makes the outputs written inside it one commit: a case's
label map and its overlay are renamed into place together, or, if any of them fails,
none is and every file that was there before is kept.

:func:`output_lock` holds an output folder for one run; a second run into the same
folder is refused with the first run's process id and command.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import errno
import functools
import json
import math
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import InputError, OutputError, first_line

#: the name of the lock file :func:`output_lock` keeps in an output folder
LOCK_NAME = ".medsam.lock"


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


#: (temporary folder, final folder) of the :func:`atomic_folder` blocks now open
_FOLDERS: contextvars.ContextVar[tuple[tuple[Path, Path], ...]] = contextvars.ContextVar(
    "medsam_folders", default=())
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


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


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


# --------------------------------------------------------------------------- lock

@contextlib.contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this run with a lock file naming the
    process, host, start time and command; removed when the block ends (with the folder,
    if this run made it and left it empty).

    A lock left by a process that no longer runs (killed) is taken over, and the
    temporary files a killed run left in the folder are removed.

    Raises:
        InputError: another run that is still running holds the folder.
        OutputError: the folder cannot be created or written.
    """
    folder = Path(folder)
    lock = folder / LOCK_NAME
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
              "command": " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))}
    created = not folder.exists()
    fd = -1
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                other = _read_lock(lock)
                if other is None and _age(lock) < 10:  # being written by a run starting now
                    other = {"pid": "?", "host": "?", "started": time.time(), "command": "starting"}
                if other is not None and _alive(other):
                    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(other.get("started", 0)))
                    raise InputError(f"{folder}: in use by another medsam run (process "
                                     f"{other.get('pid')} on {other.get('host')}, started {started}: "
                                     f"{other.get('command', '?')}); wait for it to end or write "
                                     f"elsewhere") from None
                _remove(lock)  # left by a run that was killed
        else:
            raise InputError(f"{folder}: in use by another medsam run (its lock {lock} keeps "
                             f"coming back)")
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(record))
            fh.flush()
            os.fsync(fh.fileno())
        for leftover in _temporaries(folder):   # of a run that was killed: no one writes them now
            _remove(leftover)
    except OSError as exc:
        if fd >= 0:
            _remove(lock)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise write_failure(folder, exc) from None
    try:
        yield folder
    finally:
        if (_read_lock(lock) or {}).get("pid") == os.getpid():
            _remove(lock)
        if created:   # a run that wrote nothing leaves no folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


#: the temporary names :func:`atomic_path` and :func:`atomic_folder` make (``mkstemp``'s
#: eight random characters), and the ``.old`` backups of :func:`committed_together`
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\..*)?$")


def _temporaries(folder: Path) -> list[Path]:
    """Temporary files and folders of this module left in ``folder`` (not below it)."""
    try:
        return [p for p in folder.iterdir() if _TEMPORARY.match(p.name)]
    except OSError:
        return []


def _read_lock(lock: Path) -> dict | None:
    try:
        data = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _alive(record: dict) -> bool:
    """Whether the process a lock names still runs (on another host: assumed so)."""
    if record.get("host") != socket.gethostname() or record.get("pid") == "?":
        return True
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _csv_value(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else ("-inf" if value < 0 else "nan"))
    return str(value)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write a CSV through :func:`atomic_path` (the file appears only when complete):
    floats as ``repr`` (every digit; ``inf``, ``-inf``, ``nan``), other values as ``str``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_csv_value(v) for v in row])
    return path
