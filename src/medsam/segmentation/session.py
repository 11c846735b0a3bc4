"""An interactive segmentation session: one image, its objects, their prompts, undo.

:class:`InteractiveSession` is what the web app, the challenge npz path and the
interactive benchmark drive (in the manner of nnInteractive's inference session, smaller)::

    session = InteractiveSession(MedSAMSegmenter(model))
    session.load(prepared, geometry)             # intensities already prepared (0..255)
    session.add_box(1, (x0, y0, x1, y1), key_slice=40, z_range=(31, 52), name="liver")
    session.add_click(1, x, y, z, foreground=False)
    session.undo()
    labels = session.label_map()

Each object is kept as its :class:`~.prompts.ResolvedPrompt` with its mask, and segmented by
the 3D engine (:class:`~.engine.VolumeObject`; a 2D image is a volume of one slice), so each
object's mask is a function of its box and clicks in order, and :meth:`prompts` (replayed by
:func:`medsam.segmentation.segment`) gives the same label map.
Where objects overlap, the later-added one wins (:func:`~.pipeline.compose_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..io.geometry import Geometry
from ..io.segments import Code
from ..prompt_geometry import validate_click_slice, validate_point
from .engine import DEFAULT_WALK, VolumeObject, WalkConfig, object_mask
from .pipeline import compose_labels
from .prompts import BoxPrompt, Click, ResolvedPrompt, resolve_prompt
from .quality import ObjectQuality, object_quality
from .runner import CONTENT, SliceRunner
from .segmenter import as_segmenter


@dataclass(frozen=True)
class _Entry:
    """An object as the session keeps it: its prompt (box, slice range, clicks in order,
    name and codes) and its mask (never changed in place, so an undo snapshot can share it)."""

    prompt: ResolvedPrompt
    mask: np.ndarray
    #: slice -> the model's predicted IoU of the mask it made there last
    scores: Mapping[int, float] = field(default_factory=dict)

    @property
    def label(self) -> int:
        return self.prompt.label


class InteractiveSession:
    """See the module docstring.

    Args:
        segmenter: a ``Segmenter2D`` (e.g. :class:`~medsam.segmentation.MedSAMSegmenter`) or a
            callable ``(image2d, box) -> mask``.
        config: the slice walk's settings.
        max_undo: how many changes :meth:`undo` can take back.
        cache_key: how slices are named for the segmenter's cache (default: by content).
    """

    def __init__(self, segmenter: Any, config: WalkConfig = DEFAULT_WALK, max_undo: int = 50,
                 cache_key: Hashable | None = CONTENT):
        self.segmenter = as_segmenter(segmenter)
        self.config = config
        self.max_undo = int(max_undo)
        self.cache_key = cache_key
        self.image: np.ndarray | None = None
        self.geometry: Geometry | None = None
        self._volume: np.ndarray | None = None
        self._objects: list[_Entry] = []
        self._history: list[list[_Entry]] = []
        #: called with the slice index before each slice is segmented (progress)
        self.on_slice: Callable[[int], None] | None = None

    # ------------------------------------------------------------------ image

    def load(self, image: np.ndarray, geometry: Geometry) -> None:
        """Start over on ``image`` (``(z, y, x)`` volume or ``(y, x[, 3])`` image, intensities
        as the segmenter takes them, see :func:`medsam.intensity.prepare_intensities`)."""
        image = np.asarray(image)
        geometry.check_shape(image.shape, what="image")
        self.image, self.geometry = image, geometry
        self._volume = image if geometry.ndim == 3 else image[None]
        self._objects, self._history = [], []

    def close(self) -> None:
        """Forget the image, its objects, the undo history and the segmenter's cached slice
        embeddings."""
        self.image = self.geometry = self._volume = None
        self._objects, self._history = [], []
        cache = getattr(self.segmenter, "cache", None)
        if cache is not None:
            cache.clear()

    @property
    def embeddings_computed(self) -> int:
        """Slice embeddings the segmenter has computed so far (its cache misses; 0 for a
        segmenter that keeps none), for progress."""
        return int(getattr(self.segmenter, "encoder_calls", 0))

    @property
    def cached_slices(self) -> int:
        """Slice embeddings the segmenter holds in memory now."""
        cache = getattr(self.segmenter, "cache", None)
        return len(cache) if cache is not None else 0

    @property
    def shape(self) -> tuple[int, ...]:
        """The label map's shape: ``(z, y, x)`` or ``(y, x)``."""
        self._require()
        assert self.image is not None and self.geometry is not None
        return tuple(self.image.shape[:self.geometry.ndim])

    def _require(self) -> np.ndarray:
        if self._volume is None:
            raise InputError("no image loaded in this session")
        return self._volume

    def _runner(self, label: int) -> SliceRunner:
        return SliceRunner(self._require(), self.segmenter, self.cache_key, label, self.config.model_clicks,
                           self.config.edit_model_clicks, on_slice=self.on_slice)

    # ------------------------------------------------------------------ objects

    @property
    def labels(self) -> list[int]:
        """Object labels in the order they were added."""
        return [e.label for e in self._objects]

    def _find(self, label: int) -> _Entry:
        for e in self._objects:
            if e.label == label:
                return e
        raise InputError(f"no object with label {label}")

    def _commit(self, entry: _Entry) -> None:
        self._history = (self._history + [list(self._objects)])[-self.max_undo:] if self.max_undo else []
        objects = list(self._objects)
        labels = [e.label for e in objects]
        if entry.label in labels:
            objects[labels.index(entry.label)] = entry
        else:
            objects.append(entry)
        self._objects = objects

    def add_box(self, label: int, box: tuple[float, ...], key_slice: int | None = None,
                z_range: tuple[int, int] | None = None, name: str = "",
                clicks: Sequence[Click] = (), codes: tuple[Code, Code] | None = None) -> np.ndarray:
        """Add object ``label`` (or replace its prompts, keeping its place) from a 2D box
        ``(x0, y0, x1, y1)`` pixels on ``key_slice`` (volumes), optionally bounded to the
        inclusive slice range ``z_range``; its earlier clicks are forgotten, and ``clicks``
        are applied in order (one change for :meth:`undo`); ``codes``: what it is (category,
        type) for DICOM SEG and Slicer exports. Returns its mask.

        Raises:
            InputError: a bad label, box, slice, slice range or click.
        """
        self._require()
        volume = self._is_3d
        return self._segment(self._resolve(BoxPrompt(
            tuple(box), label=label, name=name, slice=key_slice if volume else None,
            z_range=z_range if volume else None, codes=codes,
            points=tuple((c.x, c.y, float(c.z)) if volume else (c.x, c.y) for c in clicks),
            point_labels=tuple(int(c.foreground) for c in clicks))))

    def set_prompt(self, prompt: BoxPrompt) -> np.ndarray:
        """Add object ``prompt.label``, or change its prompt (it keeps its place in the
        drawing order), segmenting only what changed: clicks added after the same box and
        earlier clicks are applied one by one; a new name or codes alone segment nothing;
        anything else segments the object again from its box and all its clicks (2-value
        points lie on the key slice). Returns its mask.

        Raises:
            InputError: a bad label, box, slice, slice range or click.
        """
        self._require()
        new = self._resolve(prompt)
        old = next((e for e in self._objects if e.label == prompt.label), None)
        if old is None or not old.prompt.same_box(new) or new.clicks[:len(old.prompt.clicks)] != old.prompt.clicks:
            return self._segment(new)
        if (new.name, new.codes) != (old.prompt.name, old.prompt.codes):
            self.rename(new.label, new.name, new.codes)
        for c in new.clicks[len(old.prompt.clicks):]:
            self.add_click(new.label, c.x, c.y, c.z, foreground=c.foreground)
        return self.mask(new.label)

    def _resolve(self, prompt: BoxPrompt) -> ResolvedPrompt:
        assert self.geometry is not None
        return resolve_prompt(prompt, self.shape, self.geometry)

    def _segment(self, prompt: ResolvedPrompt) -> np.ndarray:
        """Segment an object anew from its box, then its clicks in order (one change)."""
        mask, scores = object_mask(self._require(), self.segmenter, prompt, self.config, cache_key=self.cache_key,
                                   on_slice=self.on_slice)
        self._commit(_Entry(prompt, mask, dict(scores)))
        return self._view(mask)

    def slices_to_segment(self, prompt: BoxPrompt) -> int:
        """How many slices :meth:`set_prompt` may segment for ``prompt`` at most: its slice
        range, the whole volume without one (1 for a 2D image); for progress."""
        self._require()
        if not self._is_3d:
            return 1
        return self._resolve(prompt).slices(self.shape[0])

    def add_click(self, label: int, x: float, y: float, z: int = 0, foreground: bool = True) -> np.ndarray:
        """A click on object ``label`` at column ``x``, row ``y`` of slice ``z`` (0 for 2D
        images), anywhere in the volume. Returns the object's new mask.

        Raises:
            InputError: no such object, or the click lies outside the image or the object's
            slice range.
        """
        volume = self._require()
        entry = self._find(label)
        where = f"label {label} click " + (f"({x:g}, {y:g}, {z:g})" if self._is_3d else f"({x:g}, {y:g})")
        validate_point(x, y, volume.shape[1:3], where)
        click = Click(float(x), float(y), validate_click_slice(z, int(volume.shape[0]), entry.prompt.z_range, where),
                      bool(foreground))
        p = entry.prompt
        obj = VolumeObject(p.box2d, p.start, p.z_range, list(p.clicks), entry.mask)
        run = self._runner(label)
        mask = obj.add_click(run, click, self.config)
        self._commit(_Entry(replace(p, clicks=(*p.clicks, click)), mask, {**entry.scores, **run.scores}))
        return self._view(mask)

    def rename(self, label: int, name: str, codes: tuple[Code, Code] | None = None) -> None:
        """Rename an object and set its codes (nothing is segmented again)."""
        entry = self._find(label)
        self._commit(replace(entry, prompt=replace(entry.prompt, name=name, codes=codes)))

    def remove(self, label: int) -> None:
        """Delete object ``label``."""
        self._find(label)
        self._history = (self._history + [list(self._objects)])[-self.max_undo:]
        self._objects = [e for e in self._objects if e.label != label]

    def nbytes(self) -> int:
        """Bytes of the masks the session keeps, its undo history's included (a mask shared
        by several snapshots counted once); the image is the caller's."""
        masks = {id(e.mask): e.mask.nbytes for entries in (self._objects, *self._history) for e in entries}
        return sum(masks.values())

    @property
    def can_undo(self) -> bool:
        return bool(self._history)

    def undo(self) -> None:
        """Take back the last change (a box, a click, a rename or a removal).

        Raises:
            InputError: there is nothing to undo.
        """
        if not self._history:
            raise InputError("nothing to undo")
        self._objects = self._history.pop()

    # ------------------------------------------------------------------ results

    @property
    def _is_3d(self) -> bool:
        return self.geometry is not None and self.geometry.ndim == 3

    def _view(self, mask: np.ndarray) -> np.ndarray:
        return mask if self._is_3d else mask[0]

    def mask(self, label: int) -> np.ndarray:
        """Object ``label``'s own mask (before overlaps are resolved)."""
        return self._view(self._find(label).mask)

    def label_map(self) -> np.ndarray:
        """All objects in one label map (uint8, or uint16 for labels > 255; the later-added
        object wins where two overlap)."""
        return compose_labels(self.shape, [(e.label, self._view(e.mask)) for e in self._objects])

    def prompts(self) -> list[BoxPrompt]:
        """The objects as prompts (``medsam segment`` replays them to the same label map)."""
        return [e.prompt.to_box_prompt() for e in self._objects]

    def quality(self, label: int) -> ObjectQuality:
        """Object ``label``'s quality signal (:mod:`.quality`): the model's predicted IoU over
        its slices, and warnings where it is probably wrong."""
        e = self._find(label)
        return object_quality(e.label, self._view(e.mask), e.scores, e.prompt.start, e.prompt.z_range,
                              range_given=e.prompt.z_range is not None)

    def objects(self) -> list[dict[str, Any]]:
        """Each object's label, name, key slice, slice range, clicks, and quality signal
        (``predicted_iou``, ``warnings``) as plain data."""
        out = []
        for e in self._objects:
            quality = self.quality(e.label).as_dict()
            p = e.prompt
            out.append({"label": e.label, "name": p.name, "box": list(p.box2d),
                        "key_slice": p.key_slice,
                        "z_range": list(p.z_range) if p.z_range else None,
                        "clicks": [[c.x, c.y, c.z, int(c.foreground)] for c in p.clicks],
                        "predicted_iou": quality["predicted_iou"], "warnings": quality["warnings"]})
        return out
