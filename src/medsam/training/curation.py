"""Turning one case (an image and its label mask) into stored training slices.

Steps, following the MedSAM paper's preprocessing:

1. intensities to uint8 (:mod:`medsam.intensity`; whole-volume for 3D);
2. label cleaning: keep the chosen label ids (or binarise at ``label_threshold``),
   drop 3D connected components under ``min_voxels`` voxels, then 2D components
   under ``min_pixels`` pixels in each slice (full connectivity);
3. 3D volumes become 2D slices along ``axis``; 2D images larger than
   ``tile_size`` are cut into tiles;
4. every slice (or tile) holding at least one object is stored as one compressed
   ``.npz`` with ``image`` (H, W) or (H, W, 3) uint8 at native resolution and
   ``labels`` (H, W) uint8/uint16; one :class:`ObjectEntry` per label per slice.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io.geometry import Geometry
from .description import DatasetSpec


@dataclass(frozen=True)
class CaseFiles:
    """One case of a dataset: its id (unique in the dataset), image and label paths
    (``label`` None when the labels are inside the image's npz file). With a per-class
    ``labels`` template (``{class}``), ``class_files`` holds (label id, mask file) of the
    classes the case has, and ``label`` is the first of them."""

    case: str
    image: Path
    label: Path | None
    class_files: tuple[tuple[int, Path], ...] = ()


@dataclass(frozen=True)
class ObjectEntry:
    """One object (label id) in one stored slice. ``slice`` is the index along the
    dataset's axis (-1 for 2D images); ``tile_y``/``tile_x`` the tile's top-left
    pixel in the original image (0, 0 without tiling). ``box`` is x0, y0, x1, y1 in
    pixels of the stored slice (inclusive pixel indices, x = column)."""

    dataset: str
    modality: str
    case: str
    slice: int
    tile_y: int
    tile_x: int
    file: str
    label: int
    name: str
    x0: int
    y0: int
    x1: int
    y1: int
    pixels: int
    height: int
    width: int


def _strip_ext(path: Path) -> str:
    from ..segmentation.cases import case_name

    return case_name(path)


def find_cases(spec: DatasetSpec) -> list[CaseFiles]:
    """The cases named by ``spec``; InputError when the image pattern matches nothing,
    a label file is missing or two images share a case id."""
    pattern = spec.images if os.path.isabs(spec.images) else str(spec.root / spec.images)
    images = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    if not images:
        raise InputError(f"dataset {spec.name!r}: no image matches {pattern}")
    cases: list[CaseFiles] = []
    missing: list[str] = []
    seen: dict[str, Path] = {}
    for image in images:
        stem = _strip_ext(image)
        case = spec.case_id(stem)
        if case in seen:
            raise InputError(f"dataset {spec.name!r}: {image} and {seen[case]} have the same "
                             f"case id {case!r}")
        seen[case] = image
        label = None
        class_files: tuple[tuple[int, Path], ...] = ()
        if spec.labels is not None and spec.per_class_labels:
            found = [(label_id, _template_path(spec, spec.labels, image, case, name))
                     for label_id, name in spec.classes or ()]
            class_files = tuple((label_id, path) for label_id, path in found if path.exists())
            label = class_files[0][1] if class_files else None  # none: no labelled object
        elif spec.labels is not None:
            label = _template_path(spec, spec.labels, image, case)
            if not label.exists():
                missing.append(str(label))
        elif not image.name.lower().endswith(".npz"):
            raise InputError(f"dataset {spec.name!r}: 'labels' is required unless the images "
                             f"are npz files holding 'gts' ({image})")
        cases.append(CaseFiles(case, image, label, class_files))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"dataset {spec.name!r}: label files not found: "
                         f"{', '.join(missing[:3])}{more}")
    return cases


def _template_path(spec: DatasetSpec, template: str, image: Path, case: str,
                   class_name: str = "") -> Path:
    text = template.format(stem=_strip_ext(image), name=image.name, case=case,
                           **{"class": class_name})
    return Path(text) if os.path.isabs(text) else spec.root / text


def rater_files(spec: DatasetSpec, files: CaseFiles) -> dict[str, Path]:
    """Rater name -> that rater's mask file for one case (the dataset's ``raters``
    templates); InputError naming the first missing file."""
    out = {}
    for rater, template in spec.raters or ():
        path = _template_path(spec, template, files.image, files.case)
        if not path.exists():
            raise InputError(f"dataset {spec.name!r}: rater {rater!r} has no mask for case "
                             f"{files.case!r} ({path} not found)")
        out[rater] = path
    return out


def read_case(spec: DatasetSpec, files: CaseFiles) -> tuple[np.ndarray, np.ndarray, Geometry]:
    """(image, labels, the image's geometry) as read: (z, y, x) volumes or (H, W[, 3]) images."""
    from ..io import read

    if spec.per_class_labels:
        image, geometry = read(files.image)
        spatial = image.shape[:2] if image.ndim == 3 and image.shape[-1] in (3, 4) else image.shape
        labels = _class_label_map(spec, files, spatial)
    elif files.label is None:
        from ..io.npz import read_npz

        npz = read_npz(files.image)
        if npz.gts is None:
            raise InputError(f"{files.image}: npz file holds no 'gts' labels")
        image, labels, geometry = npz.image, npz.gts, npz.geometry
    else:
        image, geometry = read(files.image)
        labels, _ = read(files.label)
    if labels.ndim == image.ndim and labels.ndim == 3 and labels.shape[-1] in (3, 4) \
            and image.shape[-1] in (3, 4):
        labels = labels.max(axis=-1)  # RGB mask of an RGB image
    elif labels.ndim == 3 and image.ndim == 2 and labels.shape[-1] in (3, 4):
        labels = labels.max(axis=-1)
    spatial = image.shape[:2] if (image.ndim == 3 and image.shape[-1] in (3, 4)
                                  and labels.ndim == 2) else image.shape
    if labels.shape != spatial:
        raise InputError(f"{files.label or files.image}: label shape {labels.shape} differs from "
                         f"image shape {image.shape}")
    return image, labels, geometry


def _class_label_map(spec: DatasetSpec, files: CaseFiles, shape: tuple[int, ...]) -> np.ndarray:
    """One label map of ``shape`` from per-class mask files (foreground: value >
    ``label_threshold``, default 0); a later class wins where two overlap; no file: empty."""
    from ..io import read

    threshold = spec.label_threshold if spec.label_threshold is not None else 0
    top = max((label for label, _ in spec.classes or ()), default=1)
    out = np.zeros(shape, dtype=np.uint16 if top > 255 else np.uint8)
    for label_id, path in files.class_files:
        mask, _ = read(path)
        mask = mask.max(axis=-1) if mask.ndim == 3 and mask.shape[-1] in (3, 4) else mask
        if mask.shape != out.shape:
            raise InputError(f"{path}: mask shape {mask.shape} differs from its image's {out.shape}")
        out[np.asarray(mask) > threshold] = label_id
    return out


def select_labels(spec: DatasetSpec, labels: np.ndarray) -> np.ndarray:
    """Integer label map with only the chosen ids (binarised at the threshold first, unless
    the labels came from per-class files, thresholded one by one)."""
    labels = np.asarray(labels)
    if spec.label_threshold is not None and not spec.per_class_labels:
        labels = (labels > spec.label_threshold).astype(np.uint8)
    elif not np.issubdtype(labels.dtype, np.integer):
        rounded = np.rint(labels)
        if not np.array_equal(rounded, labels):
            raise InputError(f"dataset {spec.name!r}: label values are not integers; set "
                             f"'label_threshold' for soft or JPEG masks")
        labels = rounded.astype(np.int64)
    if spec.classes is not None:
        keep = np.isin(labels, [label for label, _ in spec.classes])
        labels = np.where(keep, labels, 0)
    return labels.astype(np.uint16 if labels.max() > 255 else np.uint8)


def remove_small_components(mask: np.ndarray, min_size: int) -> np.ndarray:
    """``mask`` without connected components (full connectivity) under ``min_size``."""
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    components, count = ndimage.label(mask, structure=structure)
    if count == 0:
        return mask
    sizes = np.bincount(components.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[components]


def clean_labels(labels: np.ndarray, is_volume: bool, axis: int, min_pixels: int,
                 min_voxels: int) -> np.ndarray:
    """Drop 3D components < ``min_voxels`` (volumes), then per-slice 2D components
    < ``min_pixels``, label by label."""
    out = np.zeros_like(labels)
    for label in np.unique(labels):
        if label == 0:
            continue
        mask = labels == label
        if is_volume:
            mask = remove_small_components(mask, min_voxels)
            mask = np.moveaxis(mask, axis, 0)
            mask = np.stack([remove_small_components(s, min_pixels) for s in mask])
            mask = np.moveaxis(mask, 0, axis)
        else:
            mask = remove_small_components(mask, min_pixels)
        out[mask] = label
    return out


def normalise(spec: DatasetSpec, image: np.ndarray, geometry: Geometry) -> np.ndarray:
    """uint8 image: (z, y, x) for volumes, (H, W) grey or (H, W, 3) RGB for 2D, through
    :func:`medsam.intensity.prepare_intensities` (the step inference uses)."""
    from ..intensity import prepare_intensities

    is_volume = geometry.ndim == 3
    if spec.intensity.mode == "none":
        image = np.asarray(image, dtype=np.float64)
        if image.min() < 0 or image.max() > 255:
            raise InputError(f"dataset {spec.name!r}: intensity 'none' needs values in "
                             f"[0, 255], found [{image.min()}, {image.max()}]")
        out = np.rint(image).astype(np.uint8)
        return out[..., :3] if (not is_volume and out.ndim == 3) else out
    out = prepare_intensities(image, geometry, spec.modality, window=spec.intensity.window,
                              level=spec.intensity.level, width=spec.intensity.width)
    # keep grey images single-channel on disk (repeated to RGB when loaded)
    if not is_volume and (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1)):
        return np.ascontiguousarray(out[..., 0])
    return out


def tile_origins(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, size) with tiles of ``tile`` (last one flush)."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _slices(spec: DatasetSpec, image: np.ndarray, labels: np.ndarray, is_volume: bool
            ) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray]]:
    """Yield (slice index, tile_y, tile_x, image part, label part)."""
    if is_volume:
        if spec.axis > 2:
            raise InputError(f"dataset {spec.name!r}: axis {spec.axis} is out of range for a "
                             f"3D volume (0, 1 or 2)")
        image, labels = np.moveaxis(image, spec.axis, 0), np.moveaxis(labels, spec.axis, 0)
        for k in range(image.shape[0]):
            if labels[k].any():
                yield k, 0, 0, image[k], labels[k]
        return
    h, w = labels.shape
    tile = spec.tile_size
    if tile is None:
        yield -1, 0, 0, image, labels
        return
    for y in tile_origins(h, tile, spec.tile_overlap):
        for x in tile_origins(w, tile, spec.tile_overlap):
            part = labels[y:y + tile, x:x + tile]
            if part.any():
                yield -1, y, x, image[y:y + tile, x:x + tile], part


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def process_case(spec: DatasetSpec, files: CaseFiles, out_root: Path) -> dict:
    """Read, clean and store one case under ``out_root/data/<dataset>/<case>/``.

    Returns ``{"entries": [asdict(ObjectEntry)...], "present": [label ids found in
    the raw mask], "error": None}``; a case that cannot be read returns its error
    message instead (nothing stored), so one bad file does not stop a run.
    """
    from ..errors import MedSAMError
    from ..fileutil import atomic_path

    try:
        image, raw, geometry = read_case(spec, files)
        labels = select_labels(spec, raw)
        is_volume = labels.ndim == 3
        present = [int(v) for v in np.unique(labels) if v != 0]
        uint8 = normalise(spec, image, geometry)
        labels = clean_labels(labels, is_volume, spec.axis, spec.min_pixels, spec.min_voxels)
    except (MedSAMError, ValueError, OSError, MemoryError) as exc:
        return {"entries": [], "present": [], "error": f"{files.image}: {exc}"}
    entries = []
    folder = out_root / "data" / spec.name / files.case
    for k, ty, tx, img, lab in _slices(spec, uint8, labels, is_volume):
        ids = [int(v) for v in np.unique(lab) if v != 0]
        if not ids:
            continue
        stem = f"{max(k, 0):04d}" + (f"_y{ty}_x{tx}" if spec.tile_size else "")
        rel = f"data/{spec.name}/{files.case}/{stem}.npz"
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_root / rel) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, image=np.ascontiguousarray(img),
                                    labels=np.ascontiguousarray(lab))
        for label in ids:
            mask = lab == label
            x0, y0, x1, y1 = _box(mask)
            entries.append(asdict(ObjectEntry(
                dataset=spec.name, modality=spec.modality, case=files.case, slice=k,
                tile_y=ty, tile_x=tx, file=rel, label=label, name=spec.class_name(label),
                x0=x0, y0=y0, x1=x1, y1=y1, pixels=int(mask.sum()),
                height=int(lab.shape[0]), width=int(lab.shape[1]))))
    return {"entries": entries, "present": present, "error": None}
