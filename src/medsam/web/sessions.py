"""Segmentation sessions of the web app: one uploaded image, its objects and their label map.

A :class:`Session` holds one case (read with :func:`medsam.segmentation.load_case`, so any
format ``medsam segment`` reads), its intensities normalised once for the model
(:func:`medsam.intensity.prepare_intensities`), the prompts of its objects in drawing order
(a later object wins where objects overlap, as in ``medsam segment``) and the label map.
Masks come from :func:`medsam.segmentation.segment` with the session's own
:class:`~medsam.segmentation.MedSAMSegmenter` (all sessions share one model; each
segmenter's slice cache keeps that session's embeddings), so the prompts the app exports,
replayed by ``medsam segment --prompts``, give the same label map.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Hashable

import numpy as np

from ..errors import InputError
from ..segmentation import BoxPrompt, Case, MedSAMSegmenter, load_case, segment
from ..segmentation.cases import case_name
from .limits import ServerLimits, SessionError
from .uploads import viewer_nifti

#: bytes of one cached LiteMedSAM / SAM image embedding (256 x 64 x 64 float32)
EMBEDDING_BYTES = 256 * 64 * 64 * 4
LABEL_FORMATS = {"nii.gz": ".nii.gz", "nrrd": ".nrrd", "png": ".png"}


@dataclass
class _Crop:
    """One object's mask, kept as its bounding box: ``offset`` (z, y, x) and a bool crop."""

    offset: tuple[int, ...]
    mask: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> "_Crop":
        nonzero = np.nonzero(mask)
        if not nonzero[0].size:
            return cls((0,) * mask.ndim, np.zeros((0,) * mask.ndim, bool))
        lo = [int(a.min()) for a in nonzero]
        hi = [int(a.max()) + 1 for a in nonzero]
        return cls(tuple(lo), mask[tuple(slice(a, b) for a, b in zip(lo, hi))].copy())

    def region(self) -> tuple[slice, ...]:
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.mask.shape))


class _Progress:
    """A :class:`PointSegmenter2D` passing calls to ``inner`` and counting slices, so a
    client can follow a long propagation."""

    def __init__(self, inner: MedSAMSegmenter, state: dict[str, Any]) -> None:
        self.inner, self.state = inner, state

    def set_slice(self, image: np.ndarray, key: Hashable | None = None) -> None:
        self.state["slices"] += 1
        self.inner.set_slice(image, key)
        self.state["embeddings"] = self.inner.encoder_calls - self.state["_encoder_calls0"]

    def segment(self, boxes: np.ndarray) -> np.ndarray:
        return self.inner.segment(boxes)

    def segment_points(self, box: np.ndarray, points: np.ndarray, point_labels: np.ndarray) -> np.ndarray:
        return self.inner.segment_points(box, points, point_labels)


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
    prompts: list[BoxPrompt] = field(default_factory=list)
    history: list[list[BoxPrompt]] = field(default_factory=list)
    labels: np.ndarray | None = None
    viewer_path: Path | None = None
    last_used: float = field(default_factory=time.monotonic)
    progress: dict[str, Any] = field(default_factory=lambda: {"busy": False})
    lock: threading.Lock = field(default_factory=threading.Lock)
    _crops: dict[BoxPrompt, _Crop] = field(default_factory=dict)
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
        self.prompts, self.history, self._crops = [], [], {}
        self.labels = np.zeros(case.image.shape[:case.geometry.ndim], np.uint8)
        self.viewer_path = viewer
        self._objects = []
        return self.info()

    def unload(self) -> None:
        """Forget the image, its objects and their embeddings."""
        self.case = self.prepared = self.labels = self.viewer_path = None
        self.prompts, self.history, self._crops, self._objects = [], [], {}, []
        self.segmenter.cache.clear()

    def require_image(self) -> Case:
        if self.case is None:
            raise SessionError("no image in this session yet: upload one first", status=409)
        return self.case

    # ------------------------------------------------------------------ objects

    def set_prompt(self, prompt: BoxPrompt) -> dict[str, Any]:
        """Add object ``prompt.label``, or replace its prompt (it keeps its place in the
        drawing order), and segment it. Returns :meth:`info`."""
        self.require_image()
        labels = [p.label for p in self.prompts]
        prompts = list(self.prompts)
        if prompt.label in labels:
            prompts[labels.index(prompt.label)] = prompt
        else:
            prompts.append(prompt)
        self._apply(prompts)
        return self.info()

    def remove(self, label: int) -> dict[str, Any]:
        """Delete object ``label``."""
        self.require_image()
        if label not in [p.label for p in self.prompts]:
            raise SessionError(f"no object with label {label}", status=404)
        self._apply([p for p in self.prompts if p.label != label])
        return self.info()

    def undo(self) -> dict[str, Any]:
        """Go back to the objects before the last change."""
        self.require_image()
        if not self.history:
            raise SessionError("nothing to undo", status=409)
        previous = self.history.pop()
        self._apply(previous, record=False)
        return self.info()

    def _apply(self, prompts: list[BoxPrompt], record: bool = True) -> None:
        case = self.require_image()
        assert self.prepared is not None
        self.progress = {"busy": True, "slices": 0, "embeddings": 0,
                         "_encoder_calls0": self.segmenter.encoder_calls, "started": time.monotonic()}
        counting = _Progress(self.segmenter, self.progress)
        try:
            if case.geometry.ndim == 2:  # one call for all objects, exactly as medsam segment
                labels = (segment(self.prepared, case.geometry, prompts, counting) if prompts
                          else np.zeros(self.prepared.shape[:2], np.uint8))
            else:
                crops = {}   # keyed by the prompt without its name: renaming segments nothing
                for p in prompts:
                    key = replace(p, name="")
                    crops[key] = self._crops.get(key) or _Crop.of(
                        segment(self.prepared, case.geometry, [p], counting) != 0)
                labels = _compose(self.prepared.shape[:3], prompts, crops)
                self._crops = crops
        finally:
            self.progress = {"busy": False}
        if record:
            self.history = (self.history + [list(self.prompts)])[-50:]
        self.prompts, self.labels = prompts, labels
        self._objects = self.objects()

    # ------------------------------------------------------------------ results

    def objects(self) -> list[dict[str, Any]]:
        """Each object: label, name, prompt, and the size of what is visible of it in the
        label map (voxels and mL, or pixels and mm2), with its slice range on volumes
        (computed from the label map; :meth:`info` gives the copy made after the last change)."""
        from ..metrics import label_volumes

        case = self.require_image()
        assert self.labels is not None
        sizes = {m.label: m for m in label_volumes(self.labels, case.geometry.spacing, case.geometry.spacing_known)}
        out = []
        for p in self.prompts:
            m = sizes.get(p.label)
            item: dict[str, Any] = {"label": p.label, "name": p.name, "prompt": p.to_json(),
                                    "voxels": m.voxels if m else 0, "volume": m.volume if m else 0.0,
                                    "unit": m.unit if m else _unit(case)}
            if case.geometry.ndim == 3:
                zs = np.nonzero((self.labels == p.label).any(axis=(1, 2)))[0]
                item["slices"] = [int(zs[0]), int(zs[-1])] if zs.size else None
            out.append(item)
        return out

    def prompts_json(self) -> dict[str, Any]:
        """The objects as a prompts file (``medsam segment --prompts`` reads it)."""
        self.require_image()
        return {"prompts": [p.to_json() for p in self.prompts]}

    def labels_file(self, fmt: str) -> Path:
        """The label map written in the image's geometry as ``fmt`` (``nii.gz``, ``nrrd``,
        ``png``), in the session's folder; the file name is the case's with ``_seg``."""
        from ..io import write_labels

        case = self.require_image()
        if fmt not in LABEL_FORMATS:
            raise SessionError(f"unknown label format {fmt!r}; choose one of {', '.join(LABEL_FORMATS)}")
        if fmt == "png" and case.geometry.ndim == 3:
            raise SessionError("png holds 2D label maps; export a volume as nii.gz or nrrd")
        assert self.labels is not None
        out = self.workdir / "export" / (case_name(case.path) + "_seg" + LABEL_FORMATS[fmt])
        return write_labels(self.labels, out, case.geometry, overwrite=True)

    def info(self) -> dict[str, Any]:
        """What the client needs: the image's shape, spacing and dimension, the objects,
        the settings to replay with ``medsam segment``, and progress while busy."""
        progress = {k: v for k, v in self.progress.items() if not k.startswith("_")}
        if "started" in progress:
            progress["seconds"] = round(time.monotonic() - progress.pop("started"), 1)
        out: dict[str, Any] = {"id": self.id, "progress": progress}
        case = self.case
        if case is None:
            return out
        g = case.geometry
        out["image"] = {"name": case.path.name, "case": case_name(case.path), "dimension": g.ndim,
                        "shape": list(case.image.shape[:g.ndim]), "spacing": list(g.spacing),
                        "spacing_known": g.spacing_known, "rgb": case.image.ndim == g.ndim + 1,
                        "modality": self.modality, "window": self.window,
                        "index_from_ras": _index_from_ras(g)}
        out["objects"] = self._objects
        out["can_undo"] = bool(self.history)
        return out

    def nbytes(self) -> int:
        """Memory the session holds (arrays and cached embeddings), in bytes."""
        arrays = [a for a in (getattr(self.case, "image", None), self.prepared, self.labels) if a is not None]
        crops = sum(c.mask.nbytes for c in self._crops.values())
        return sum(a.nbytes for a in arrays) + crops + len(self.segmenter.cache) * EMBEDDING_BYTES

    def close(self) -> None:
        self.segmenter.cache.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _unit(case: Case) -> str:
    from ..metrics import volume_unit

    return volume_unit(case.geometry.ndim, case.geometry.spacing, case.geometry.spacing_known)[1]


def _compose(shape: tuple[int, ...], prompts: list[BoxPrompt], crops: dict[BoxPrompt, _Crop]) -> np.ndarray:
    """The label map of objects painted in order (a later one wins), as ``segment`` does."""
    dtype = np.uint8 if max((p.label for p in prompts), default=0) <= 255 else np.uint16
    labels = np.zeros(shape, dtype)
    for p in prompts:
        crop = crops[replace(p, name="")]
        if crop.mask.size:
            labels[crop.region()][crop.mask] = p.label
    return labels


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
    """The :class:`BoxPrompt` of a segment request (``box``, ``slice``, ``label``, ``name``,
    ``points``, ``point_labels``, ``propagate``). A 2D box on a volume with
    ``propagate`` false segments its slice only, stored as the 3D box ``z0 = z1 = slice``.

    Raises:
        InputError: the values do not make a prompt.
    """
    case = session.require_image()
    box = [float(v) for v in body["box"]]
    slc = body.get("slice")
    if case.geometry.ndim == 3 and len(box) == 4 and slc is not None and not body.get("propagate", True):
        box, slc = [box[0], box[1], float(slc), box[2], box[3], float(slc)], None
    try:
        return BoxPrompt(tuple(box), label=int(body.get("label", 1)), name=str(body.get("name") or ""),
                         slice=slc, points=tuple(tuple(p) for p in body.get("points") or ()),
                         point_labels=tuple(body.get("point_labels") or ()))
    except ValueError as exc:
        raise InputError(str(exc)) from None
