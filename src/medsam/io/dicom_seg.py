"""DICOM Segmentation objects (SEG): a label map back to PACS, OHIF or 3D Slicer, and in.

Written and read with `highdicom <https://highdicom.readthedocs.io>`_ (the ``dicom``
extra: ``pip install 'medsam-toolkit[dicom]'``), imported when used; no tag is written
by hand here.

* :func:`write_dicom_seg` - a BINARY segmentation of the source series (one frame per
  source instance, none left out): the references to the source series and instances,
  one segment per object (number, label, name, category and type codes: the generic
  "Tissue" where none is given), the algorithm (name, version, the weights' sha256 as a
  parameter) and the source's exact frame geometry (plane positions, orientation, pixel
  spacing, copied by highdicom from the source instances);
* :func:`read_dicom_seg` - a SEG (ours or another tool's) as ``(labels (z, y, x),
  Geometry)`` in the order and orientation in which :func:`~.volume.read_dicom_series`
  gives its source series, so both lie on the same grid;
* :func:`is_dicom_seg` - whether a file is a SEG (its SOP class, without reading it all);
* :func:`seg_sources` - the source instances, checked for what the references need.

Segment numbers run 1..N in label order; each segment's tracking identifier
``label <n>`` keeps its label value, so a map with labels 1 and 3 reads back as 1 and 3.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, first_line, install_hint
from ..fileutil import atomic_path, write_failure
from .geometry import Geometry
from .segments import Segment

#: the SOP Class UID of the Segmentation Storage IOD
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
_TRACKING = re.compile(r"^label (\d+)$")


@dataclass(frozen=True)
class Algorithm:
    """What made the segmentation, as the SEG's algorithm identification records it.

    Attributes:
        name: the model (``"lite_medsam"``, a checkpoint's file name).
        version: the software's version (medsam's).
        weights_sha256: the sha256 of the weights file (hex), ``""`` when unknown.
    """

    name: str
    version: str
    weights_sha256: str = ""


@dataclass(frozen=True)
class SegSource:
    """What a DICOM SEG of a label map needs besides the map: the source instances
    (:func:`seg_sources`, in slice order) and the algorithm that made it."""

    sources: tuple[Any, ...]
    algorithm: Algorithm


def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError:
        raise InputError(f"DICOM SEG needs highdicom: {install_hint('dicom')}") from None
    return highdicom


def is_dicom_seg(path: str | os.PathLike) -> bool:
    """True when ``path`` is a DICOM file whose SOP class is Segmentation Storage (read
    from its first kilobytes, where the file meta information names it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head[128:132] == b"DICM" and SEG_SOP_CLASS.encode() in head


def seg_sources(files: Sequence[str | os.PathLike]) -> list[Any]:
    """The source instances (pydicom datasets, without pixel data) of a SEG, in the given
    order (the series' slice order).

    Raises:
        InputError: a file is unreadable, or lacks an identifier the references need
            (study, series or SOP instance UID, SOP class: an anonymised export that
            emptied them cannot be referenced).
    """
    _highdicom()
    import pydicom

    datasets = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception as error:   # pydicom raises many types for damaged files
            raise InputError(f"{f}: cannot read it as DICOM ({first_line(error)})") from None
        missing = [k for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
                               "FrameOfReferenceUID") if not str(getattr(ds, k, "") or "").strip()]
        if missing:
            raise InputError(f"{f}: the source instance has no {', '.join(missing)} (an anonymised export?); "
                             f"a DICOM SEG must reference the source series by them")
        datasets.append(ds)
    return datasets


def write_dicom_seg(labels: np.ndarray, path: str | os.PathLike, sources: Sequence[Any],
                    segments: Sequence[Segment], algorithm: Algorithm, overwrite: bool = False) -> Path:
    """Write ``labels`` as a DICOM SEG of ``sources`` (:func:`seg_sources`), atomically.

    Args:
        labels: ``(z, y, x)`` label map, slice ``z`` of source instance ``z``, or ``(y, x)``
            for one source image.
        segments: one per label to describe (:func:`~.segments.segments_of`), in label order.
        algorithm: what made it.
    Raises:
        InputError: the map does not fit the sources, or an existing output without ``overwrite``.
        OutputError: the file could not be written.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    labels = np.asarray(labels)
    frames = labels[None] if labels.ndim == 2 else labels
    path = Path(path)
    if frames.shape[0] != len(sources):
        raise InputError(f"{path}: the label map has {frames.shape[0]} slices, the source series {len(sources)}")
    numbers = np.zeros(int(max([frames.max(initial=0)] + [s.label for s in segments])) + 1, np.uint16)
    for i, s in enumerate(segments):
        numbers[s.label] = i + 1
    if frames.max(initial=0) > 0 and not numbers[np.unique(frames[frames > 0])].all():
        raise InputError(f"{path}: labels {sorted(set(np.unique(frames)) - {0} - {s.label for s in segments})} "
                         f"have no segment description")
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm.name, family=codes.cid7162.ArtificialIntelligence, version=algorithm.version,
        source="medsam-toolkit", parameters={"weights_sha256": algorithm.weights_sha256 or "unknown"})
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=s.name[:64],
        segmented_property_category=hd.sr.CodedConcept(s.category.value, s.category.scheme, s.category.meaning),
        segmented_property_type=hd.sr.CodedConcept(s.type.value, s.type.scheme, s.type.meaning),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=identification,
        tracking_id=f"label {s.label}", tracking_uid=hd.UID()) for i, s in enumerate(segments)]
    try:
        seg = hd.seg.Segmentation(
            source_images=list(sources), pixel_array=numbers[frames].astype(np.uint16),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=900, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="medsam-toolkit", manufacturer_model_name=algorithm.name[:64],
            software_versions=algorithm.version, device_serial_number="1", omit_empty_frames=False,
            series_description="medsam segmentation", content_label="MEDSAM",
            content_description=f"{algorithm.name} (medsam {algorithm.version})"[:64])
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise InputError(f"{path}: cannot make a DICOM SEG of this series ({first_line(error)})") from None
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            seg.save_as(tmp)
        except OSError as error:
            raise write_failure(path, error) from None
    return path


def read_dicom_seg(path: str | os.PathLike) -> tuple[np.ndarray, Geometry]:
    """A DICOM SEG as ``(labels (z, y, x), Geometry)``, on its source series' grid.

    Pixel values are the segments' labels: the value of a tracking identifier ``label <n>``
    (what :func:`write_dicom_seg` records), else the segment number.

    Raises:
        InputError: the file is not a readable SEG, or its segments overlap (no label map).
    """
    hd = _highdicom()
    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
        volume = seg.get_volume(combine_segments=True)
    except Exception as error:   # pydicom / highdicom raise many types for damaged files
        reason = first_line(error)
        if "overlap" in reason.lower():
            raise InputError(f"{path}: its segments overlap, so they make no label map") from None
        raise InputError(f"{path}: not a readable DICOM SEG ({reason})") from None
    values = np.arange(len(seg.SegmentSequence) + 1, dtype=np.int64)
    for item in seg.SegmentSequence:
        match = _TRACKING.match(str(getattr(item, "TrackingID", "")))
        if match:
            values[int(item.SegmentNumber)] = int(match.group(1))
    array = values[np.asarray(volume.array, dtype=np.int64)]
    return _series_order(array, np.asarray(volume.affine, dtype=float))


def _series_order(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, Geometry]:
    """The array and geometry with slices along row x column, as ITK stacks a series."""
    from .values import as_label_map

    axes = affine[:3, :3]                      # columns: array axes (slice, row, column) in LPS mm
    x, y, z = axes[:, 2], axes[:, 1], axes[:, 0]
    origin = affine[:3, 3]
    if np.dot(z, np.cross(x, y)) < 0:          # slices run against the normal: reverse them
        origin = origin + (array.shape[0] - 1) * z
        z, array = -z, array[::-1]
    spacing = tuple(float(np.linalg.norm(v)) for v in (z, y, x))
    matrix = np.stack([x / spacing[2], y / spacing[1], z / spacing[0]], axis=1)
    geometry = Geometry(spacing=spacing, origin=tuple(float(v) for v in origin),
                        direction=tuple(float(v) for v in matrix.ravel()))
    return as_label_map(np.ascontiguousarray(array)), geometry
