"""Bounds of a web server, and the errors it answers with an HTTP status."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Callable

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
        body_idle_seconds: a request body that sends nothing for this long is answered 408
            and its connection closed.
        body_min_rate: bytes per second a body must average after its first
            ``body_idle_seconds`` (a body trickled in a byte at a time is cut off).
        uploads_per_client: request bodies one client address may be sending at once (429
            beyond).
    """

    max_sessions: int = 8
    idle_seconds: float = 1800.0
    max_upload_bytes: int = 1 << 30
    max_voxels: int = 150_000_000
    max_memory_bytes: int = 8 << 30
    cache_slices: int = 64
    body_idle_seconds: float = 30.0
    body_min_rate: float = 64 * 1024
    uploads_per_client: int = 4


class SessionError(MedSAMError):
    """A request the server refuses; ``status`` is its HTTP status code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _BodyTimeout(Exception):
    pass


class BodyGuard:
    """ASGI middleware: request bodies within time (``body_idle_seconds``, ``body_min_rate``)
    and at most ``uploads_per_client`` bodies being received per client address, so that
    stalled uploads (slow loris) cannot hold the server's connections and memory."""

    def __init__(self, app: Callable, limits: ServerLimits) -> None:
        self.app, self.limits = app, limits
        self.receiving: dict[str, int] = {}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        if self.receiving.get(client, 0) >= self.limits.uploads_per_client:
            await _answer(send, 429, f"{self.limits.uploads_per_client} requests from this address are still "
                                     f"sending; wait for them to finish")
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        size = int(length) if length.isdigit() else 0
        idle = self.limits.body_idle_seconds
        deadline = time.monotonic() + idle + size / self.limits.body_min_rate
        state = {"done": False, "started": False, "timed_out": False}
        self.receiving[client] = self.receiving.get(client, 0) + 1
        stalled = (f"the request body stalled: nothing for {idle:.0f} s, or slower than "
                   f"{self.limits.body_min_rate / 1024:.0f} KiB/s")

        def finished() -> None:
            if not state["done"]:
                state["done"] = True
                self.receiving[client] -= 1
                if not self.receiving[client]:
                    del self.receiving[client]

        async def guarded_receive() -> Any:
            if state["done"]:
                return await receive()
            left = min(idle, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except asyncio.TimeoutError:
                state["timed_out"] = True
                finished()
                raise _BodyTimeout from None
            if message.get("type") != "http.request" or not message.get("more_body", False):
                finished()
            return message

        async def watched_send(message: dict) -> None:
            # after a stall, whatever the app answers (its body parser may call it a bad
            # request) is replaced by the 408
            if state["timed_out"]:
                if not state["started"]:
                    state["started"] = True
                    await _answer(send, 408, stalled)
                return
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, watched_send)
        except _BodyTimeout:
            if not state["started"]:
                state["started"] = True
                await _answer(send, 408, stalled)
        finally:
            finished()


async def _answer(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
