"""Segmentation sessions of the web app: one uploaded image, its objects and their label map.

A :class:`Session` holds one case (read with :func:`medsam.segmentation.load_case`, so any
format ``medsam segment`` reads), its intensities normalised once for the model
(:func:`medsam.intensity.prepare_intensities`), and an
:class:`~medsam.segmentation.session.InteractiveSession` with the objects, their boxes,
slice ranges and clicks, undo and the label map (a later object wins where objects
overlap, as in ``medsam segment``). The session's own
:class:`~medsam.segmentation.MedSAMSegmenter` (all sessions share one model; each
segmenter's slice cache keeps that session's embeddings) segments, so the prompts the app
exports, replayed by ``medsam segment --prompts``, give the same label map.
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from ..io.segments import Code
from ..segmentation import BoxPrompt, Case, MedSAMSegmenter, load_case
from ..segmentation.cases import case_name
from ..segmentation.session import InteractiveSession
from .limits import ServerLimits, SessionError
from .uploads import viewer_nifti

#: bytes of one cached LiteMedSAM / SAM image embedding (256 x 64 x 64 float32)
EMBEDDING_BYTES = 256 * 64 * 64 * 4
#: export format -> the file name's tail after the case name (nrrd: 3D Slicer's named, coloured
#: segments; dcm: a DICOM SEG of the uploaded DICOM series)
LABEL_FORMATS = {"nii.gz": "_seg.nii.gz", "nrrd": ".seg.nrrd", "png": "_seg.png", "dcm": "_seg.dcm"}


def export_formats(case: Case) -> list[str]:
    """The label formats of a case, the first the default: PNG for 2D images, NIfTI and
    Slicer's .seg.nrrd for volumes, and DICOM SEG when the scan came in as DICOM."""
    from ..io.dispatch import extension
    from ..io.volume import DICOM_EXTENSIONS

    formats = ["png", "nii.gz"] if case.geometry.ndim == 2 else ["nii.gz", "nrrd"]
    from ..io.dicom_seg import is_dicom_seg

    if Path(case.path).is_dir() or (extension(case.path) in DICOM_EXTENSIONS and not is_dicom_seg(case.path)):
        formats.append("dcm")
    return formats


@dataclass
class Session:
    """One image being segmented (see the module docstring). Methods that change it hold
    :attr:`lock`; :meth:`info` does not, so progress can be read while it works."""

    id: str
    workdir: Path
    segmenter: MedSAMSegmenter
    limits: ServerLimits
    case: Case | None = None
    prepared: np.ndarray | None = None
    modality: str | None = None
    window: str | None = None
    interactive: InteractiveSession | None = None
    labels: np.ndarray | None = None
    viewer_path: Path | None = None
    last_used: float = field(default_factory=time.monotonic)
    progress: dict[str, Any] = field(default_factory=lambda: {"busy": False})
    #: the last background segment (``?wait=false``): state running / done / failed, its label
    #: and, when it failed, why
    job: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _objects: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ image

    def load(self, path: Path, modality: str | None = None, window: str | None = None) -> dict[str, Any]:
        """Read the image at ``path`` (file or DICOM folder), normalise it for the model and
        write the viewer's copy. Replaces any earlier image and its objects.

        Raises:
            InputError: the file cannot be read or normalised (names the file).
            SessionError: the image has more voxels than allowed (413).
        """
        from ..intensity import prepare_intensities

        case = load_case(path)
        voxels = int(np.prod(case.image.shape[:case.geometry.ndim]))
        if voxels > self.limits.max_voxels:
            raise SessionError(f"{path.name}: {voxels} voxels; this server takes images of up to "
                               f"{self.limits.max_voxels}", status=413)
        modality = modality or case.modality
        prepared = prepare_intensities(case.image, case.geometry, modality, window)
        viewer = viewer_nifti(case.image, case.geometry, self.workdir / "viewer.nii.gz")
        self.case, self.prepared, self.modality, self.window = case, prepared, modality, window
        self.interactive = InteractiveSession(self.segmenter)
        self.interactive.on_slice = self._count_slice
        self.interactive.load(prepared, case.geometry)
        self.labels = self.interactive.label_map()
        self.viewer_path = viewer
        self._objects = []
        return self.info()

    def unload(self) -> None:
        """Forget the image, its objects and their embeddings."""
        if self.interactive is not None:
            self.interactive.close()
        self.case = self.prepared = self.labels = self.viewer_path = self.interactive = None
        self._objects = []

    def _count_slice(self, z: int) -> None:
        if self.progress.get("busy"):
            self.progress["slices"] += 1
            assert self.interactive is not None
            self.progress["embeddings"] = self.interactive.embeddings_computed - self.progress["_encoder_calls0"]

    def require_image(self) -> Case:
        if self.case is None:
            raise SessionError("no image in this session yet: upload one first", status=409)
        return self.case

    # ------------------------------------------------------------------ objects

    def _require_objects(self) -> InteractiveSession:
        self.require_image()
        assert self.interactive is not None
        return self.interactive

    def set_prompt(self, prompt: BoxPrompt) -> dict[str, Any]:
        """Add object ``prompt.label``, or change its prompt
        (:meth:`InteractiveSession.set_prompt`). Returns :meth:`info`."""
        objects = self._require_objects()
        with self._busy(total=objects.slices_to_segment(prompt)):
            objects.set_prompt(prompt)
        self._changed()
        return self.info()

    def add_click(self, label: int, x: float, y: float, z: int, foreground: bool) -> dict[str, Any]:
        """A click on object ``label`` at ``(x, y)`` of slice ``z`` (any slice). Returns :meth:`info`."""
        objects = self._require_objects()
        if label not in objects.labels:
            raise SessionError(f"no object with label {label}", status=404)
        with self._busy():
            objects.add_click(label, x, y, z, foreground)
        self._changed()
        return self.info()

    def remove(self, label: int) -> dict[str, Any]:
        """Delete object ``label``."""
        objects = self._require_objects()
        if label not in objects.labels:
            raise SessionError(f"no object with label {label}", status=404)
        objects.remove(label)
        self._changed()
        return self.info()

    def undo(self) -> dict[str, Any]:
        """Go back to the objects before the last change."""
        objects = self._require_objects()
        if not objects.can_undo:
            raise SessionError("nothing to undo", status=409)
        objects.undo()
        self._changed()
        return self.info()

    @contextmanager
    def _busy(self, total: int | None = None) -> Iterator[None]:
        """Progress while segmenting: slices done of about ``total`` (a new object's slice
        range, the whole volume without one), from which :meth:`info` estimates the time left."""
        self.progress = {"busy": True, "slices": 0, "embeddings": 0, "total": total,
                         "_encoder_calls0": self.interactive.embeddings_computed if self.interactive else 0,
                         "started": time.monotonic()}
        try:
            yield
        finally:
            self.progress = {"busy": False}

    def _changed(self) -> None:
        assert self.interactive is not None
        self.labels = self.interactive.label_map()
        self._objects = self.objects()

    # ------------------------------------------------------------------ results

    def objects(self) -> list[dict[str, Any]]:
        """Each object: label, name, prompt, the size of what is visible of it in the label map
        (voxels and mL, or pixels and mm2), the model's predicted IoU and the warnings of
        :mod:`medsam.segmentation.quality`, with its slice range on volumes
        (computed from the label map; :meth:`info` gives the copy made after the last change)."""
        from ..metrics import label_volumes

        case = self.require_image()
        assert self.labels is not None and self.interactive is not None
        sizes = {m.label: m for m in label_volumes(self.labels, case.geometry.spacing, case.geometry.spacing_known)}
        out = []
        for p in self.interactive.prompts():
            m = sizes.get(p.label)
            quality = self.interactive.quality(p.label).as_dict()
            item: dict[str, Any] = {"label": p.label, "name": p.name, "prompt": p.to_json(),
                                    "voxels": m.voxels if m else 0, "volume": m.volume if m else 0.0,
                                    "unit": m.unit if m else _unit(case),
                                    "predicted_iou": quality["predicted_iou"], "warnings": quality["warnings"]}
            if case.geometry.ndim == 3:
                zs = np.nonzero((self.labels == p.label).any(axis=(1, 2)))[0]
                item["slices"] = [int(zs[0]), int(zs[-1])] if zs.size else None
            out.append(item)
        return out

    def prompts_json(self) -> dict[str, Any]:
        """The objects as a prompts file (``medsam segment --prompts`` reads it)."""
        return {"prompts": [p.to_json() for p in self._require_objects().prompts()]}

    def labels_file(self, fmt: str) -> Path:
        """The label map written in the image's geometry as ``fmt`` (``nii.gz``, ``nrrd``,
        ``png``), in the session's folder, named by the case (:data:`LABEL_FORMATS`); objects
        keep their names (in a ``.seg.nrrd``, as 3D Slicer segments)."""
        from ..io import write_labels

        case = self.require_image()
        if fmt not in LABEL_FORMATS:
            raise SessionError(f"unknown label format {fmt!r}; choose one of {', '.join(LABEL_FORMATS)}")
        if fmt == "png" and case.geometry.ndim == 3:
            raise SessionError("png holds 2D label maps; export a volume as nii.gz or nrrd")
        if fmt not in export_formats(case):
            raise SessionError(f"{fmt} is not available for this image; choose one of "
                               f"{', '.join(export_formats(case))}")
        assert self.labels is not None
        out = self.workdir / "export" / (case_name(case.path) + LABEL_FORMATS[fmt])
        prompts = self._require_objects().prompts()
        names = {p.label: p.name for p in prompts}
        codes = {p.label: p.codes for p in prompts if p.codes is not None}
        dicom = None
        if fmt == "dcm":
            from ..io.dicom_seg import SegSource
            from ..segmentation.batch import algorithm_of, case_seg_sources

            dicom = SegSource(case_seg_sources(case, out), algorithm_of(self.segmenter))
        return write_labels(self.labels, out, case.geometry, overwrite=True, names=names, codes=codes, dicom=dicom)

    def info(self) -> dict[str, Any]:
        """What the client needs: the image's shape, spacing and dimension, the objects,
        the settings to replay with ``medsam segment``, and progress while busy."""
        progress = {k: v for k, v in self.progress.items() if not k.startswith("_")}
        if "started" in progress:
            progress["seconds"] = round(time.monotonic() - progress.pop("started"), 1)
            done, total = progress.get("slices", 0), progress.get("total")
            if total and done:   # the walk may stop before the range ends: an upper estimate
                progress["seconds_left"] = round(max(total - done, 0) * progress["seconds"] / done, 1)
        out: dict[str, Any] = {"id": self.id, "progress": progress}
        if self.job is not None:
            out["job"] = dict(self.job)
        case = self.case
        if case is None:
            return out
        g = case.geometry
        out["image"] = {"name": case.path.name, "case": case_name(case.path), "dimension": g.ndim,
                        "shape": list(case.image.shape[:g.ndim]), "spacing": list(g.spacing),
                        "spacing_known": g.spacing_known, "rgb": case.image.ndim == g.ndim + 1,
                        "modality": self.modality, "window": self.window,
                        "index_from_ras": _index_from_ras(g),
                        "exports": {f: case_name(case.path) + LABEL_FORMATS[f] for f in export_formats(case)}}
        out["objects"] = self._objects
        out["can_undo"] = bool(self.interactive and self.interactive.can_undo)
        return out

    def nbytes(self) -> int:
        """Memory the session holds or has reserved, in bytes: the image as read and as the
        model takes it, the label map, every mask (undo history included), and the slice
        embeddings its cache may hold for this image (``cache_slices``, at most one per
        slice), reserved from the upload on so that segmenting never passes the bound."""
        arrays = [a for a in (getattr(self.case, "image", None), self.prepared, self.labels) if a is not None]
        masks = self.interactive.nbytes() if self.interactive else 0
        slices = 0
        if self.case is not None:
            depth = self.case.image.shape[0] if self.case.geometry.ndim == 3 else 1
            slices = min(self.limits.cache_slices, depth)
        cached = self.interactive.cached_slices if self.interactive else 0
        return sum(a.nbytes for a in arrays) + masks + max(cached, slices) * EMBEDDING_BYTES

    def close(self) -> None:
        self.unload()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _unit(case: Case) -> str:
    from ..metrics import volume_unit

    return volume_unit(case.geometry.ndim, case.geometry.spacing, case.geometry.spacing_known)[1]


def _index_from_ras(geometry: Any) -> list[list[float]]:
    """4x4 matrix from RAS world mm (the viewer's coordinates) to continuous array indices
    ``(x, y, z)`` (x = column; 2D images: z = 0)."""
    nd = geometry.ndim
    spacing = np.asarray(geometry.spacing[::-1], float)   # (x, y[, z])
    direction = np.asarray(geometry.direction, float).reshape(nd, nd)
    origin = np.asarray(geometry.origin, float)
    lps_to_index = np.linalg.inv(direction @ np.diag(spacing))
    m = np.eye(4)
    m[:nd, :nd] = lps_to_index @ np.diag([-1.0, -1.0, 1.0][:nd])   # RAS -> LPS flips x and y
    m[:nd, 3] = -lps_to_index @ origin
    return m.tolist()


def prompt_from_request(body: dict[str, Any], session: Session) -> BoxPrompt:
    """The :class:`BoxPrompt` of a segment request (``box``, ``slice``, ``z_range``,
    ``label``, ``name``, ``points``, ``point_labels``, ``propagate``, and the codes
    ``category`` and ``type``). A 2D box on a volume
    with ``propagate`` false segments its slice only: its slice range is that slice.

    Raises:
        InputError: the values do not make a prompt.
    """
    case = session.require_image()
    box = [float(v) for v in body["box"]]
    slc = body.get("slice")
    z_range = body.get("z_range")
    if case.geometry.ndim == 3 and len(box) == 4 and slc is not None and not body.get("propagate", True):
        z_range = [slc, slc]
    codes = None
    if body.get("category") or body.get("type"):
        if not (body.get("category") and body.get("type")):
            raise InputError("give category and type together (codes as scheme^value^meaning)")
        codes = (Code.parse(str(body["category"])), Code.parse(str(body["type"])))
    try:
        return BoxPrompt(tuple(box), label=int(body.get("label", 1)), name=str(body.get("name") or ""),
                         slice=slc, points=tuple(tuple(p) for p in body.get("points") or ()),
                         point_labels=tuple(body.get("point_labels") or ()),
                         z_range=None if z_range is None else (int(z_range[0]), int(z_range[1])), codes=codes)
    except ValueError as exc:
        raise InputError(str(exc)) from None
