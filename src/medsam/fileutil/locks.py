"""Output folders held by one run at a time (:func:`output_lock`), and what tells a
live run from a dead one."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .checks import _remove, write_failure

#: the name of the lock file :func:`output_lock` keeps in an output folder
LOCK_NAME = ".medsam.lock"


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
