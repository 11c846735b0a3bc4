"""The web app's routes: module-level handlers on two ``APIRouter``\\ s, ``api`` (the REST API,
under ``/api``, described in :mod:`.app`) and ``page`` (the page, its static files and the
API's ``/docs``).

Each handler translates one HTTP request into calls on a
:class:`~medsam.web.sessions.Session` (which drives the library's
:class:`~medsam.segmentation.session.InteractiveSession`) and its answer back into JSON or a
file; it decides nothing about segmentation. What a handler needs of the server (the session
store, the limits, the viewer's files) comes from the app's state through dependencies,
set once by :func:`~medsam.web.app.create_app`. This module imports FastAPI, so only
``create_app`` imports it, after checking that the ``web`` extra is installed.
"""
# no `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from ..errors import InputError, MedSAMError
from ..io.bounds import read_limits
from .limits import ServerLimits, SessionError
from .sessions import Session, prompt_from_request
from .store import SessionStore
from .uploads import case_path, describe_upload, public_message, safe_name, save_upload

STATIC = Path(__file__).parent / "static"

api = APIRouter(prefix="/api")
page = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Server:
    """What the handlers need of the server, kept in ``app.state.server``.

    Attributes:
        store: the sessions.
        limits: sessions, upload size, memory.
        model_name: what ``/api/health`` reports.
        replay_options: what the page adds to the replay command to name the same model.
        files: static file name -> path (the page's scripts and styles, NiiVue, Swagger UI).
        hints: how a page user sets the options errors name (``MedSAMError.render``).
        pacs: the configured PACS, or None.
    """

    store: SessionStore
    limits: ServerLimits
    model_name: str
    replay_options: str
    files: dict[str, Path]
    hints: dict[str, str]
    #: the PACS (:class:`~medsam.io.dicomweb.PacsServer`) the page may open series from and
    #: store SEGs on; None: none. Its credentials stay here, never sent to the page.
    pacs: Any = None

    def message(self, exc: MedSAMError) -> str:
        """An error as the page shows it (no server paths)."""
        return public_message(exc.render(self.hints), self.store.root)


def server(request: Request) -> Server:
    return request.app.state.server


def session(sid: str, srv: Server = Depends(server)) -> Session:
    return srv.store.get(sid)


class SegmentRequest(BaseModel):
    box: list[float] = Field(description="x0, y0, x1, y1 (pixels, x = column) or x0, y0, z0, x1, y1, z1")
    slice: Optional[int] = Field(None, description="key slice (0-based) of a 2D box on a volume")
    z_range: Optional[tuple[int, int]] = Field(None, description="first and last slice of the object "
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


class PacsOpenRequest(BaseModel):
    study: str = Field(description="study instance UID", max_length=64)
    series: str = Field(description="series instance UID", max_length=64)
    modality: Optional[str] = Field(None, description="as for an upload (default: the series' own)")
    window: Optional[str] = Field(None, description="CT window for the model, as for an upload")


class ClickRequest(BaseModel):
    x: float = Field(description="column (pixels)")
    y: float = Field(description="row (pixels)")
    z: int = Field(0, description="slice (0-based; 0 for 2D images)")
    foreground: bool = Field(True, description="true: the object is here; false: it is not")


# ---------------------------------------------------------------------- the page

@page.get("/")
def index() -> Any:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@page.get("/docs")
def docs() -> Any:
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url="/openapi.json", title="medsam API", swagger_favicon_url="data:,",
                               swagger_js_url="/static/swagger-ui-bundle.js",
                               swagger_css_url="/static/swagger-ui.css")


@page.get("/static/{name}")
def static(name: str, srv: Server = Depends(server)) -> Any:
    if name not in srv.files:
        raise SessionError(f"no static file {name!r}", status=404)
    return FileResponse(srv.files[name])


# ---------------------------------------------------------------------- the API

@api.get("/health")
def health(srv: Server = Depends(server)) -> dict[str, Any]:
    from .. import __version__
    from ..io import LABEL_COLOURS

    return {"status": "ok", "version": __version__, "model": srv.model_name, "sessions": len(srv.store),
            "max_sessions": srv.limits.max_sessions, "replay_options": srv.replay_options,
            "label_colours": LABEL_COLOURS, "pacs": srv.pacs.describe() if srv.pacs is not None else None}


@api.post("/sessions", status_code=201)
def create_session(srv: Server = Depends(server)) -> dict[str, Any]:
    srv.store.check_memory()
    return {"id": srv.store.create().id}


@api.get("/sessions/{sid}")
def get_session(s: Session = Depends(session)) -> dict[str, Any]:
    return s.info()


@api.delete("/sessions/{sid}")
def delete_session(sid: str, srv: Server = Depends(server)) -> dict[str, Any]:
    srv.store.delete(sid)
    return {"deleted": sid}


@api.post("/sessions/{sid}/image")
def upload(files: list[UploadFile] = File(...), modality: Optional[str] = Form(None),
           window: Optional[str] = Form(None), s: Session = Depends(session),
           srv: Server = Depends(server)) -> dict[str, Any]:
    names = [safe_name(f.filename or "") for f in files]
    if len(set(names)) != len(names):
        raise InputError(f"{describe_upload(names)}: two uploaded files have the same name")
    with s.lock:
        folder = _fresh_upload_folder(s)
        budget = [srv.limits.max_upload_bytes]
        saved = []
        for f, name in zip(files, names):
            save_upload(_chunks(f.file), folder / name, budget)
            saved.append(folder / name)
        return _load(s, srv, case_path(saved, folder, srv.limits.max_upload_bytes), modality, window)


@api.get("/pacs/series")
def pacs_series(patient_id: Optional[str] = Query(None, max_length=64),
                date: Optional[str] = Query(None, max_length=17, description="YYYYMMDD or YYYYMMDD-YYYYMMDD"),
                modality: Optional[str] = Query(None, max_length=16),
                description: Optional[str] = Query(None, max_length=64, description="* matches anything"),
                srv: Server = Depends(server)) -> dict[str, Any]:
    """The configured PACS's series matching every filter given (QIDO-RS)."""
    from ..io.dicomweb import find_series

    pacs = _pacs(srv)
    return {"server": pacs.describe(), "series": find_series(pacs, patient_id=patient_id or None, date=date or None,
                                                             modality=modality or None,
                                                             description=description or None)}


@api.post("/sessions/{sid}/pacs")
def open_from_pacs(request: PacsOpenRequest, s: Session = Depends(session),
                   srv: Server = Depends(server)) -> dict[str, Any]:
    """Retrieve a series from the configured PACS (WADO-RS) and open it, as an upload."""
    from ..io.dicomweb import retrieve_series, uid_name

    pacs = _pacs(srv)
    with s.lock:
        folder = _fresh_upload_folder(s) / uid_name(request.series)
        series = retrieve_series(pacs, request.study, request.series, folder, max_bytes=srv.limits.max_upload_bytes)
        return _load(s, srv, series, request.modality, request.window)


@api.post("/sessions/{sid}/pacs/store")
def save_to_pacs(s: Session = Depends(session), srv: Server = Depends(server)) -> dict[str, Any]:
    """Store the DICOM SEG of the current objects (names and codes included) on the
    configured PACS (STOW-RS, checked by looking it up)."""
    from ..io.dicomweb import store_files

    pacs = _pacs(srv)
    with s.lock:
        path = s.labels_file("dcm")
        stored = store_files(pacs, [path])
    return {"server": pacs.describe(), "stored": len(stored), "file": path.name}


def _fresh_upload_folder(s: Session) -> Path:
    """The session's empty folder for the image it opens next (an earlier one's files go)."""
    folder = s.workdir / "upload"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    return folder


def _load(s: Session, srv: Server, path: Path, modality: Optional[str], window: Optional[str]) -> dict[str, Any]:
    """Open ``path`` in the session (its lock held): what the file declares is checked
    against the memory the other sessions leave, before a voxel is decoded, and an image
    that leaves the server over its memory bound is unloaded again."""
    with read_limits(max_array_bytes=srv.store.memory_left(besides=s), max_voxels=srv.limits.max_voxels):
        info = s.load(path, modality or None, window or None)
    try:
        srv.store.check_memory()
    except SessionError:
        s.unload()
        raise
    return info


def _pacs(srv: Server) -> Any:
    if srv.pacs is None:
        raise SessionError("this server has no PACS configured", status=404)
    return srv.pacs


@api.get("/sessions/{sid}/image.nii.gz", include_in_schema=False)
def viewer_image(s: Session = Depends(session)) -> Any:
    s.require_image()
    assert s.viewer_path is not None
    return FileResponse(s.viewer_path, media_type="application/gzip", filename="image.nii.gz")


@api.post("/sessions/{sid}/segment")
def segment(request: SegmentRequest,
            wait: bool = Query(True, description="false: answer 202 at once and segment in the background; "
                                                 "GET the session for its progress and, once it is no "
                                                 "longer busy, its objects and the job's outcome"),
            s: Session = Depends(session), srv: Server = Depends(server)) -> Any:
    if wait:
        with s.lock:
            result = s.set_prompt(prompt_from_request(request.model_dump(), s))
            _within_memory(s, srv)
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
            _within_memory(s, srv)
            s.job = {"state": "done", "label": prompt.label}
        except MedSAMError as exc:
            s.job = {"state": "failed", "label": prompt.label, "detail": srv.message(exc)}
        except Exception as exc:   # reported to the client, never lost in a thread
            s.job = {"state": "failed", "label": prompt.label, "detail": f"internal error: {type(exc).__name__}"}
        finally:
            s.lock.release()

    threading.Thread(target=job, daemon=True, name=f"segment-{s.id}").start()
    return JSONResponse(s.info(), status_code=202)


@api.post("/sessions/{sid}/objects/{label}/clicks")
def click(label: int, request: ClickRequest, s: Session = Depends(session),
          srv: Server = Depends(server)) -> dict[str, Any]:
    with s.lock:
        result = s.add_click(label, request.x, request.y, request.z, request.foreground)
        _within_memory(s, srv)
    return result


@api.post("/sessions/{sid}/undo")
def undo(s: Session = Depends(session)) -> dict[str, Any]:
    with s.lock:
        return s.undo()


@api.delete("/sessions/{sid}/objects/{label}")
def delete_object(label: int, s: Session = Depends(session)) -> dict[str, Any]:
    with s.lock:
        return s.remove(label)


@api.get("/sessions/{sid}/labels.nii.gz", include_in_schema=False)
def viewer_labels(s: Session = Depends(session)) -> Any:
    return _labels(s, "nii.gz")


@api.get("/sessions/{sid}/labels")
def labels(format: str = Query("nii.gz", description="nii.gz, nrrd (Slicer .seg.nrrd), png (2D) or "
                                                     "dcm (DICOM SEG, for DICOM uploads)"),
           s: Session = Depends(session)) -> Any:
    return _labels(s, format)


@api.get("/sessions/{sid}/prompts")
def prompts(s: Session = Depends(session)) -> Any:
    from ..segmentation.cases import case_name

    case = s.require_image()
    text = json.dumps(s.prompts_json(), indent=2) + "\n"   # a file people read and edit
    return Response(text, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{case_name(case.path)}_prompts.json"'})


def _labels(s: Session, fmt: str) -> Any:
    with s.lock:
        path = s.labels_file(fmt)
        data = path.read_bytes()
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{path.name}"',
                             "Cache-Control": "no-store"})


def _within_memory(s: Session, srv: Server) -> None:
    """After a change: past the memory bound, the change is taken back and refused."""
    try:
        srv.store.check_memory()
    except SessionError:
        s.undo()
        raise


def _chunks(fh: Any, size: int = 1 << 20) -> Any:
    while chunk := fh.read(size):
        yield chunk
