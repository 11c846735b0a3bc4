"""Box prompts + an image with its geometry -> a label map, for 2D images and volumes.

:func:`segment` is what ``medsam segment`` runs (the command adds only file handling):
prompts are checked against the image (world boxes converted through the geometry),
2D images are segmented with all boxes in one batch, volumes object by object with
:func:`~medsam.segmentation.propagation.propagate_3d`. Per-slice keys let a caching
segmenter (MedSAM) compute each slice's embedding once for all objects.

:func:`measure_labels` gives each label's voxel count and volume (mL, from the spacing)
or, for 2D images, its area.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from ..io.geometry import Geometry
from .prompts import BoxPrompt, ResolvedPrompt, resolve_prompt
from .propagation import MODES, propagate_3d
from .segmenter import as_segmenter


def resolve_prompts(prompts: Sequence[BoxPrompt], shape: Sequence[int], geometry: Geometry,
                    mode: str = "propagate") -> list[ResolvedPrompt]:
    """Check every prompt against the image (see :func:`resolve_prompt`) and the 3D mode:
    the plain mode (the same box on every slice of a range) needs 3D boxes.

    Raises:
        InputError: naming the prompt and the problem.
    """
    from ..errors import InputError

    if not prompts:
        raise InputError("no prompts given")
    resolved = [resolve_prompt(p, shape, geometry) for p in prompts]
    if mode == "plain" and geometry.ndim == 3:
        for p in resolved:
            if p.z_range is None:
                raise InputError(f"label {p.label}: the plain 3D mode uses the same box on every "
                                 f"slice of a range, so it needs a 3D box x0,y0,z0,x1,y1,z1, not a "
                                 f"2D box on one slice")
    return resolved


def _label_dtype(prompts: Sequence[ResolvedPrompt]) -> type:
    return np.uint8 if max(p.label for p in prompts) <= 255 else np.uint16


def segment(image: np.ndarray, geometry: Geometry, prompts: Sequence[BoxPrompt], segmenter: Any,
            mode: str = "propagate", margin: float = 5.0, min_pixels: int = 1,
            cache_key: Hashable | None = None, progress: bool = False) -> np.ndarray:
    """Segment every prompted object and return one label map.

    Args:
        image: ``(y, x)`` / ``(y, x, 3)`` image or ``(z, y, x)`` volume, already in the intensity
            range the segmenter expects.
        geometry: the image's geometry (2D or 3D; decides how ``image`` is read).
        prompts: boxes with label ids (pixel or world coordinates).
        segmenter: a ``Segmenter2D`` or a callable ``(image2d, box) -> mask``.
        mode: ``"propagate"`` or ``"plain"`` for volumes (see :func:`propagate_3d`).
        margin, min_pixels: propagation settings.
        cache_key: names this image for the segmenter's per-slice cache (a fresh key is
            made when None, so slices are shared between the objects of this call).
        progress: tqdm bar over objects.
    Returns:
        label map with the image's spatial shape (uint8, or uint16 for labels > 255);
        0 = background; where objects overlap, the later prompt wins.
    Raises:
        InputError: a prompt does not fit the image (box outside, zero size, bad slice, ...).
    """
    from tqdm.auto import tqdm

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    image = np.asarray(image)
    geometry.check_shape(image.shape, what="image")
    shape = image.shape[:geometry.ndim]
    resolved = resolve_prompts(prompts, shape, geometry, mode)
    segmenter = as_segmenter(segmenter)
    key = cache_key if cache_key is not None else uuid.uuid4().hex
    labels = np.zeros(shape, dtype=_label_dtype(resolved))

    if geometry.ndim == 2:
        segmenter.set_slice(image, key=(key, 0))
        masks = np.asarray(segmenter.segment(np.array([p.box2d for p in resolved])), dtype=bool)
        for p, mask in zip(resolved, masks):
            labels[mask] = p.label
        return labels

    for p in tqdm(resolved, desc="objects", unit="object", disable=not progress, leave=False):
        mask = propagate_3d(image, segmenter, p.box2d, key_slice=p.key_slice, z_range=p.z_range,
                            margin=margin, mode=mode, min_pixels=min_pixels, cache_key=key,
                            progress=progress)
        labels[mask] = p.label
    return labels


@dataclass(frozen=True)
class LabelMeasure:
    """Size of one label in a label map.

    Attributes:
        label: label id; voxels: its voxel (pixel) count;
        size_mm: mm^3 for volumes, mm^2 for 2D images;
        ndim: 2 or 3; spacing_known: False when the image had no physical pixel size.
    """

    label: int
    voxels: int
    size_mm: float
    ndim: int
    spacing_known: bool = True

    @property
    def volume_ml(self) -> float | None:
        """Volume in millilitres (cm^3) for 3D labels, else None."""
        return self.size_mm / 1000.0 if self.ndim == 3 else None

    @property
    def area_mm2(self) -> float | None:
        """Area in mm^2 for 2D labels, else None."""
        return self.size_mm if self.ndim == 2 else None

    def describe(self, name: str = "") -> str:
        head = f"label {self.label}" + (f" ({name})" if name else "")
        unit = "voxels" if self.ndim == 3 else "pixels"
        if not self.spacing_known:
            return f"{head}: {self.voxels} {unit} (pixel size unknown)"
        if self.ndim == 3:
            return f"{head}: {self.voxels} {unit}, {self.volume_ml:.3f} mL"
        return f"{head}: {self.voxels} {unit}, {self.area_mm2:.2f} mm^2"


def measure_labels(labels: np.ndarray, spacing: Sequence[float], spacing_known: bool = True
                   ) -> list[LabelMeasure]:
    """Voxel count and physical size of every non-zero label.

    Args:
        labels: ``(z, y, x)`` or ``(y, x)`` integer label map.
        spacing: voxel size in mm in ARRAY axis order (``(z, y, x)`` / ``(y, x)``).
    Returns:
        one :class:`LabelMeasure` per label present, sorted by label id.
    """
    labels = np.asarray(labels)
    if len(spacing) != labels.ndim or labels.ndim not in (2, 3):
        raise ValueError(f"spacing {tuple(spacing)} does not match labels of shape {labels.shape}")
    ids, counts = np.unique(labels[labels != 0], return_counts=True)
    voxel = float(np.prod(spacing))
    return [LabelMeasure(int(i), int(c), float(c) * voxel, labels.ndim, spacing_known)
            for i, c in zip(ids, counts)]
