"""The open sessions of a web server: created, found, expired and closed here, within the
bounds of :class:`~medsam.web.limits.ServerLimits` (count, idle time, memory)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ..segmentation import MedSAMSegmenter
from .limits import ServerLimits, SessionError
from .sessions import Session


class SessionStore:
    """The open sessions of a server, sharing one model.

    Args:
        make_segmenter: a new :class:`MedSAMSegmenter` on the shared model, per session.
        limits: the bounds (:class:`ServerLimits`).
        root: folder for the sessions' files (uploads, exports); default a new temporary one.
    """

    def __init__(self, make_segmenter: Callable[[], MedSAMSegmenter], limits: ServerLimits = ServerLimits(),
                 root: Path | None = None) -> None:
        self.make_segmenter, self.limits = make_segmenter, limits
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="medsam-web-"))
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> Session:
        """A new empty session.

        Raises:
            SessionError: 429 when ``max_sessions`` are open.
        """
        self.expire()
        with self._lock:
            if len(self._sessions) >= self.limits.max_sessions:
                raise SessionError(f"{len(self._sessions)} sessions are open, the most this server allows; "
                                   f"close one, or wait until an idle one expires "
                                   f"({self.limits.idle_seconds / 60:g} minutes unused)", status=429)
            sid = uuid.uuid4().hex
            workdir = self.root / sid
            workdir.mkdir(parents=True)
            session = Session(sid, workdir, self.make_segmenter(), self.limits)
            self._sessions[sid] = session
            return session

    def get(self, sid: str) -> Session:
        """The session ``sid``, marked as used now.

        Raises:
            SessionError: 404 when there is none (never opened, closed, or expired).
        """
        self.expire()
        session = self._sessions.get(sid)
        if session is None:
            raise SessionError(f"no session {sid!r} (closed, or expired after "
                               f"{self.limits.idle_seconds / 60:g} minutes unused)", status=404)
        session.last_used = time.monotonic()
        return session

    def delete(self, sid: str) -> None:
        """Close session ``sid`` (after the work it is doing)."""
        session = self.get(sid)
        with session.lock, self._lock:
            self._sessions.pop(sid, None)
        session.close()

    def expire(self) -> list[str]:
        """Close sessions idle for longer than ``idle_seconds`` (not those at work)."""
        now = time.monotonic()
        with self._lock:
            old = [s for s in self._sessions.values()
                   if now - s.last_used > self.limits.idle_seconds and not s.lock.locked()]
            for s in old:
                del self._sessions[s.id]
        for s in old:
            s.close()
        return [s.id for s in old]

    def memory_left(self, besides: Any = None) -> int:
        """Bytes of ``max_memory_bytes`` that the sessions other than ``besides`` leave (at
        least 1)."""
        used = sum(s.nbytes() for s in list(self._sessions.values()) if s is not besides)
        return max(self.limits.max_memory_bytes - used, 1)

    def check_memory(self, extra: int = 0) -> None:
        """Raise 429 when the sessions' memory plus ``extra`` bytes passes ``max_memory_bytes``."""
        used = sum(s.nbytes() for s in list(self._sessions.values()))
        if used + extra > self.limits.max_memory_bytes:
            raise SessionError(f"the server's sessions hold {used / 2**20:.0f} MiB of the "
                               f"{self.limits.max_memory_bytes / 2**20:.0f} MiB it allows; close a session "
                               f"and try again", status=429)

    def close(self) -> None:
        """Close every session and remove the server's files."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()
        shutil.rmtree(self.root, ignore_errors=True)
