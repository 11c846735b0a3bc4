"""The web app's HTTP server: a REST API (documented by OpenAPI at ``/docs``) and the page.

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

Sessions are bounded by :class:`~medsam.web.sessions.ServerLimits`. Request handlers are
plain functions that FastAPI runs in a thread pool, so a slow embedding in one session
does not hold up requests of others. With ``token`` set, every ``/api`` request must carry
it (``Authorization: Bearer ...``, or ``?token=`` for the viewer's downloads).
"""
# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time
import contextlib
import hmac
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InputError, MedSAMError, install_hint
from ..io.bounds import TooLargeError, read_limits
from .assets import VIEWER_DIR, viewer_files
from .limits import BodyGuard, ServerLimits, SessionError
from .sessions import Session, prompt_from_request
from .store import SessionStore
from .uploads import case_path, describe_upload, public_message, safe_name, save_upload

STATIC = Path(__file__).parent / "static"


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
    import threading
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


def _chunks(fh: Any, size: int = 1 << 20) -> Any:
    while chunk := fh.read(size):
        yield chunk


def _import_fastapi() -> Any:
    try:
        import fastapi
    except ImportError:
        raise MedSAMError(f"the web app needs FastAPI and uvicorn: {install_hint('web')}") from None
    return fastapi


def create_app(make_segmenter: Callable[[], Any], *, limits: ServerLimits = ServerLimits(),
               token: str | None = None, model_name: str = "", replay_options: str = "",
               viewer_dir: Path = VIEWER_DIR, root: Path | None = None) -> Any:
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
    """
    fastapi = _import_fastapi()
    from contextlib import asynccontextmanager

    from fastapi import Request
    from fastapi.responses import JSONResponse

    viewer = viewer_files(viewer_dir)   # fail early when the viewer is missing
    store = SessionStore(make_segmenter, limits, root)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        yield
        store.close()

    app = fastapi.FastAPI(title="medsam", lifespan=lifespan, docs_url=None, redoc_url=None,
                          description="Box-prompted medical image segmentation (MedSAM) as a REST API.")
    app.state.store = store

    @app.exception_handler(MedSAMError)
    async def medsam_error(request: Request, exc: MedSAMError) -> Any:
        status = exc.status if isinstance(exc, SessionError) else 413 if isinstance(exc, TooLargeError) else 400
        return JSONResponse({"detail": public_message(exc.render(WEB_HINTS), store.root)}, status_code=status)

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
    _page_routes(app, viewer)
    _api_routes(app, store, limits, model_name, replay_options)
    return app


def _page_routes(app: Any, viewer: dict[str, Path]) -> None:
    """The page, its static files (``viewer``: NiiVue and Swagger UI from npm), and the API's
    ``/docs`` page."""
    from fastapi.responses import FileResponse

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(openapi_url="/openapi.json", title="medsam API", swagger_favicon_url="data:,",
                                   swagger_js_url="/static/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui.css")

    files = {**viewer, **{p.name: p for p in STATIC.iterdir() if p.suffix in (".js", ".css")}}

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Any:
        if name not in files:
            raise SessionError(f"no static file {name!r}", status=404)
        return FileResponse(files[name])


def _api_routes(app: Any, store: SessionStore, limits: ServerLimits, model_name: str, replay_options: str) -> None:
    """The REST API (see the module docstring)."""
    import fastapi
    from fastapi import File, Form, Query, UploadFile
    from fastapi.responses import FileResponse, JSONResponse
    from pydantic import BaseModel, Field

    class SegmentRequest(BaseModel):
        box: list[float] = Field(description="x0, y0, x1, y1 (pixels, x = column) or x0, y0, z0, x1, y1, z1")
        slice: int | None = Field(None, description="key slice (0-based) of a 2D box on a volume")
        z_range: tuple[int, int] | None = Field(None, description="first and last slice of the object "
                                                                  "(a 2D box with its key slice)")
        label: int = Field(1, ge=1, le=65535, description="the object's label id")
        name: str = Field("", max_length=200)
        points: list[list[float]] = Field([], description="clicks x, y (pixels) on the key slice, or x, y, z "
                                                          "on any slice, in order")
        point_labels: list[int] = Field([], description="1 foreground, 0 background, one per point")
        propagate: bool = Field(True, description="a 2D box on a volume: propagate through the volume "
                                                  "(true) or segment its slice only")
        category: str = Field("", max_length=200, description="what the object is, for DICOM SEG and Slicer "
                                                               "exports: scheme^value^meaning (with type)")
        type: str = Field("", max_length=200, description="e.g. SCT^64033007^Kidney (with category)")

    class ClickRequest(BaseModel):
        x: float = Field(description="column (pixels)")
        y: float = Field(description="row (pixels)")
        z: int = Field(0, description="slice (0-based; 0 for 2D images)")
        foreground: bool = Field(True, description="true: the object is here; false: it is not")

    def session(sid: str) -> Session:
        return store.get(sid)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        from .. import __version__
        from ..io import LABEL_COLOURS

        return {"status": "ok", "version": __version__, "model": model_name, "sessions": len(store),
                "max_sessions": limits.max_sessions, "replay_options": replay_options,
                "label_colours": LABEL_COLOURS}

    @app.post("/api/sessions", status_code=201)
    def create_session() -> dict[str, Any]:
        store.check_memory()
        return {"id": store.create().id}

    @app.get("/api/sessions/{sid}")
    def get_session(sid: str) -> dict[str, Any]:
        return session(sid).info()

    @app.delete("/api/sessions/{sid}")
    def delete_session(sid: str) -> dict[str, Any]:
        store.delete(sid)
        return {"deleted": sid}

    @app.post("/api/sessions/{sid}/image")
    def upload(sid: str, files: list[UploadFile] = File(...), modality: str | None = Form(None),
               window: str | None = Form(None)) -> dict[str, Any]:
        s = session(sid)
        names = [safe_name(f.filename or "") for f in files]
        if len(set(names)) != len(names):
            raise InputError(f"{describe_upload(names)}: two uploaded files have the same name")
        with s.lock:
            folder = s.workdir / "upload"
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            folder.mkdir()
            budget = [limits.max_upload_bytes]
            saved = []
            for f, name in zip(files, names):
                save_upload(_chunks(f.file), folder / name, budget)
                saved.append(folder / name)
            # what the file declares is checked against the memory the other sessions leave,
            # before a voxel is decoded
            with read_limits(max_array_bytes=store.memory_left(besides=s), max_voxels=limits.max_voxels):
                info = s.load(case_path(saved, folder, limits.max_upload_bytes), modality or None, window or None)
            try:
                store.check_memory()
            except SessionError:
                s.unload()
                raise
            return info

    @app.get("/api/sessions/{sid}/image.nii.gz", include_in_schema=False)
    def viewer_image(sid: str) -> Any:
        s = session(sid)
        s.require_image()
        assert s.viewer_path is not None
        return FileResponse(s.viewer_path, media_type="application/gzip", filename="image.nii.gz")

    @app.post("/api/sessions/{sid}/segment")
    def segment(sid: str, request: SegmentRequest,
                wait: bool = Query(True, description="false: answer 202 at once and segment in the background; "
                                                     "GET the session for its progress and, once it is no "
                                                     "longer busy, its objects and the job's outcome")) -> Any:
        s = session(sid)
        if wait:
            with s.lock:
                result = s.set_prompt(prompt_from_request(request.model_dump(), s))
                _within_memory(s)
            return result
        if not s.lock.acquire(blocking=False):
            raise SessionError("this session is still working on another change; try again when it is done", 409)
        try:
            prompt = prompt_from_request(request.model_dump(), s)   # a bad request is answered now
        except BaseException:
            s.lock.release()
            raise
        s.job = {"state": "running", "label": prompt.label}

        def job() -> None:
            try:
                s.set_prompt(prompt)
                _within_memory(s)
                s.job = {"state": "done", "label": prompt.label}
            except MedSAMError as exc:
                s.job = {"state": "failed", "label": prompt.label,
                         "detail": public_message(exc.render(WEB_HINTS), store.root)}
            except Exception as exc:   # reported to the client, never lost in a thread
                s.job = {"state": "failed", "label": prompt.label, "detail": f"internal error: {type(exc).__name__}"}
            finally:
                s.lock.release()

        threading.Thread(target=job, daemon=True, name=f"segment-{sid}").start()
        return JSONResponse(s.info(), status_code=202)

    @app.post("/api/sessions/{sid}/objects/{label}/clicks")
    def click(sid: str, label: int, request: ClickRequest) -> dict[str, Any]:
        s = session(sid)
        with s.lock:
            result = s.add_click(label, request.x, request.y, request.z, request.foreground)
            _within_memory(s)
        return result

    def _within_memory(s: Session) -> None:
        """After a change: past the memory bound, the change is taken back and refused."""
        try:
            store.check_memory()
        except SessionError:
            s.undo()
            raise

    @app.post("/api/sessions/{sid}/undo")
    def undo(sid: str) -> dict[str, Any]:
        s = session(sid)
        with s.lock:
            return s.undo()

    @app.delete("/api/sessions/{sid}/objects/{label}")
    def delete_object(sid: str, label: int) -> dict[str, Any]:
        s = session(sid)
        with s.lock:
            return s.remove(label)

    @app.get("/api/sessions/{sid}/labels.nii.gz", include_in_schema=False)
    def viewer_labels(sid: str) -> Any:
        return labels(sid, "nii.gz")

    @app.get("/api/sessions/{sid}/labels")
    def labels(sid: str, format: str = Query("nii.gz", description="nii.gz, nrrd (Slicer .seg.nrrd), png (2D) or "
                                                                     "dcm (DICOM SEG, for DICOM uploads)")) -> Any:
        s = session(sid)
        with s.lock:
            path = s.labels_file(format)
            data = path.read_bytes()
        return fastapi.Response(data, media_type="application/octet-stream",
                                headers={"Content-Disposition": f'attachment; filename="{path.name}"',
                                         "Cache-Control": "no-store"})

    @app.get("/api/sessions/{sid}/prompts")
    def prompts(sid: str) -> Any:
        s = session(sid)
        case = s.require_image()
        from ..segmentation.cases import case_name

        text = json.dumps(s.prompts_json(), indent=2) + "\n"   # a file people read and edit
        return fastapi.Response(text, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="{case_name(case.path)}_prompts.json"'})
