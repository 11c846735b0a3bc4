"""Bounds of a web server, and the errors it answers with an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MedSAMError


@dataclass(frozen=True)
class ServerLimits:
    """Bounds of a web server.

    Attributes:
        max_sessions: open sessions at once.
        idle_seconds: a session unused this long is closed.
        max_upload_bytes: size of one upload (all its files).
        max_voxels: voxels (pixels) of one image.
        max_memory_bytes: memory all sessions may hold together: each image as read and as
            the model takes it, its label map, its masks (undo history included) and the
            4 MiB slice embeddings its cache may hold (``cache_slices``, at most the image's
            slices), counted from the upload on (``Session.nbytes``).
        cache_slices: slice embeddings each session keeps.
    """

    max_sessions: int = 8
    idle_seconds: float = 1800.0
    max_upload_bytes: int = 1 << 30
    max_voxels: int = 150_000_000
    max_memory_bytes: int = 8 << 30
    cache_slices: int = 64


class SessionError(MedSAMError):
    """A request the server refuses; ``status`` is its HTTP status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
