"""The cases of a dataset description entry, read as stored: which files a dataset
holds (:func:`find_dataset_cases`), the images, labels and raters' masks of one case, the
label ids kept, and the dataset's intensity rule.

Used by evaluation (:mod:`medsam.evaluation.accuracy`, the interactive benchmark),
training-data curation (:mod:`medsam.training.curation`) and the protocol.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io.geometry import Geometry
from ..segmentation.cases import case_name
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


def find_dataset_cases(spec: DatasetSpec) -> list[CaseFiles]:
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
        stem = case_name(image)
        if spec.case_pattern is not None and "/" in spec.case_pattern:
            stem = f"{image.parent.name}/{stem}"
        case = spec.case_id(stem)
        if case in seen:
            raise InputError(f"dataset {spec.name!r}: {image} and {seen[case]} have the same "
                             f"case id {case!r}")
        seen[case] = image
        if spec.cases is not None and case not in spec.cases:
            continue
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
    if spec.cases is not None:
        absent = sorted(set(spec.cases) - set(seen))
        if absent:
            raise InputError(f"dataset {spec.name!r}: cases {', '.join(absent)} are not among its images")
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"dataset {spec.name!r}: label files not found: "
                         f"{', '.join(missing[:3])}{more}")
    return cases


def _template_path(spec: DatasetSpec, template: str, image: Path, case: str,
                   class_name: str = "") -> Path:
    text = template.format(stem=case_name(image), name=image.name, case=case,
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
