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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..datasets.cases import CaseFiles, normalise, read_case, remove_small_components, select_labels
from ..datasets.description import DatasetSpec
from ..errors import InputError


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
