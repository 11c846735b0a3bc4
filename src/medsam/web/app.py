r"""The web app's HTTP server: a REST API (documented by OpenAPI at ``/docs``) and the page.

API (all JSON; errors are ``{"detail": "..."}`` with a 4xx status, never a 500 for bad input):

``GET /api/health``
    server, model and session count.
``POST /api/sessions`` -> ``{"id": ...}``; ``GET`` / ``DELETE /api/sessions/{id}``
    a session's state (image, objects, progress) / close it.
``POST /api/sessions/{id}/image``
    multipart ``files`` (one image, a DICOM zip, or a DICOM series' files) and optional
    ``modality``, ``window`` -> shape, spacing, dimension.
``POST /api/sessions/{id}/segment``
    ``{"box": [x0, y0, x1, y1] | [x0, y0, z0, x1, y1, z1], "slice": k, "z_range": [first, last],
    "label": n, "name": "", "points": [[x, y] | [x, y, z], ...], "point_labels": [1, 0, ...],
    "propagate": true}`` -> the objects with their voxel counts, volumes, the model's predicted
    IoU and warnings; ``?wait=false``: 202 at once, the work goes on in the background
    (``GET`` the session: ``progress`` with slices done and the time left, then ``job``).
``POST /api/sessions/{id}/objects/{label}/clicks``
    ``{"x": .., "y": .., "z": k, "foreground": true}``: a click on any slice.
``POST /api/sessions/{id}/undo``, ``DELETE /api/sessions/{id}/objects/{label}``
``GET /api/sessions/{id}/labels?format=nii.gz|nrrd|png|dcm``
    the label map in the image's geometry (nrrd: a 3D Slicer ``.seg.nrrd``; dcm: a DICOM
    SEG, for scans uploaded as DICOM; the image's ``exports`` lists what it offers).
``GET /api/sessions/{id}/prompts``
    the objects as a prompts file for ``medsam segment --prompts``.
``GET /api/sessions/{id}/image.nii.gz``
    the image for the viewer.

The handlers are module-level functions on ``APIRouter``\ s in :mod:`.routes`; this module
builds the app around them (state, error handler, access token, body limits). Sessions are
bounded by :class:`~medsam.web.sessions.ServerLimits`. Request handlers are
plain functions that FastAPI runs in a thread pool, so a slow embedding in one session
does not hold up requests of others. With ``token`` set, every ``/api`` request must carry
it (``Authorization: Bearer ...``, or ``?token=`` for the viewer's downloads).
"""
# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time
import contextlib
import hmac
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import MedSAMError, install_hint
from ..io.bounds import TooLargeError
from .assets import VIEWER_DIR, viewer_files
from .limits import BodyGuard, ServerLimits, SessionError
from .store import SessionStore

#: how a page user sets the options errors name (``MedSAMError.render``); options the page
#: has no control for get no hint (never a Python argument)
WEB_HINTS: dict[str, str] = {
    "modality": "choose the modality (CT, MR, X-ray, ...) before opening the image",
}


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread (scripts, notebooks, tests) and
    yield its base URL; ``port`` 0 takes a free one. The server stops when the block ends."""
    import socket
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise MedSAMError(f"the web server did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise MedSAMError(f"the web app needs FastAPI and uvicorn: {install_hint('web')}") from None
    return fastapi


def create_app(make_segmenter: Callable[[], Any], *, limits: ServerLimits = ServerLimits(),
               token: str | None = None, model_name: str = "", replay_options: str = "",
               viewer_dir: Path = VIEWER_DIR, root: Path | None = None, pacs: Any = None) -> Any:
    """The FastAPI application.

    Args:
        make_segmenter: a new :class:`~medsam.segmentation.MedSAMSegmenter` per session,
            all on one shared model.
        limits: sessions, upload size, memory (:class:`ServerLimits`).
        token: required on every API request when set (servers reachable from other machines).
        model_name: what ``/api/health`` reports.
        replay_options: what the page adds to the replay command to name the same model.
        viewer_dir: the viewer's folder (:mod:`.assets`: built into a wheel, or ``npm ci``).
        root: folder for session files (default: a new temporary folder, removed at shutdown).
        pacs: a :class:`~medsam.io.dicomweb.PacsServer` the page may open series from and store
            SEGs on ("Open from PACS", "Save to PACS"); its credentials stay on the server.
    """
    fastapi = _import_fastapi()
    from contextlib import asynccontextmanager

    from fastapi import Request
    from fastapi.responses import JSONResponse

    from . import routes

    viewer = viewer_files(viewer_dir)   # fail early when the viewer is missing
    store = SessionStore(make_segmenter, limits, root)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        store.close()

    app = fastapi.FastAPI(title="medsam", lifespan=lifespan, docs_url=None, redoc_url=None,
                          description="Box-prompted medical image segmentation (MedSAM) as a REST API.")
    files = {**viewer, **{p.name: p for p in routes.STATIC.iterdir() if p.suffix in (".js", ".css")}}
    app.state.server = routes.Server(store, limits, model_name, replay_options, files, WEB_HINTS, pacs)

    @app.exception_handler(MedSAMError)
    async def medsam_error(request: Request, exc: MedSAMError) -> Any:
        status = exc.status if isinstance(exc, SessionError) else 413 if isinstance(exc, TooLargeError) else 400
        return JSONResponse({"detail": app.state.server.message(exc)}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable) -> Any:
        if token and request.url.path.startswith("/api/"):
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            given = request.query_params.get("token") or bearer
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": "this server needs its access token (printed when it started)"},
                                    status_code=401)
        if request.method == "POST" and request.url.path.endswith("/image"):
            length = request.headers.get("content-length")
            if length is None or not length.isdigit():
                return JSONResponse({"detail": "uploads need a Content-Length"}, status_code=411)
            if int(length) > limits.max_upload_bytes:
                return JSONResponse({"detail": f"the upload is {int(length) / 2**20:.1f} MiB; this server takes "
                                               f"{limits.max_upload_bytes / 2**20:.0f} MiB"}, status_code=413)
        return await call_next(request)

    app.add_middleware(BodyGuard, limits=limits)   # outermost: bodies within time, per client
    app.include_router(routes.page)
    app.include_router(routes.api)
    return app
