"""The objects of a label map as viewers name them: a name, a colour and a coded meaning.

A label map alone says only "label 2". 3D Slicer and DICOM SEG describe each object:

* :class:`Segment` - label value, name, colour (RGB 0-255), and the DICOM category and
  type codes (:class:`Code`; the generic "Tissue" where the user gives none);
* :func:`segments_of` - one :class:`Segment` per label of a map (named where names are
  given; the colour of :func:`label_colour`, which the web app draws with too);
* :func:`slicer_fields` / :func:`read_segments` - the per-segment header fields of 3D
  Slicer's ``.seg.nrrd`` (``Segment<i>_Name``, ``_Color``, ``_LabelValue``, ``_Layer``,
  ``_Extent``, ``_ID``, ``_Tags``, in the layout Slicer's own files use), and back.

Extents are Slicer's: inclusive voxel index ranges ``i0 i1 j0 j1 k0 k1`` with ``i`` the
column (x), ``j`` the row (y), ``k`` the slice (z); an empty segment has ``0 -1 0 -1 0 -1``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError

#: colours of labels 1, 2, 3, ... (RGB 0-255), repeated after the last: ITK-SNAP's first
#: label colours, which are also NiiVue's default drawing colours; the web app draws with these
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
    (255, 239, 213), (0, 0, 205), (205, 133, 63), (210, 180, 140), (102, 205, 170), (0, 0, 128),
)


@dataclass(frozen=True)
class Code:
    """A coded concept (DICOM's code sequence item): ``Code("SCT", "64033007", "Kidney")``."""

    scheme: str
    value: str
    meaning: str

    @classmethod
    def parse(cls, text: str) -> Code:
        """``"SCT^64033007^Kidney"`` (scheme, value, meaning), as Slicer's terminology writes it."""
        parts = text.split("^")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise InputError(f"code {text!r}: write it as scheme^value^meaning, e.g. SCT^64033007^Kidney")
        return cls(*(p.strip() for p in parts))

    def __str__(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


#: the generic concept used where a user gives no code (SNOMED CT "Tissue"), as category and type
TISSUE = Code("SCT", "85756007", "Tissue")


@dataclass(frozen=True)
class Segment:
    """One object of a label map.

    Attributes:
        label: its value in the label map (1..65535).
        name: what viewers show ("kidney right"); ``label <n>`` where none was given.
        colour: RGB 0-255.
        category, type: the DICOM segmented property category and type.
        layer: Slicer's layer (0: one label map holds every segment).
    """

    label: int
    name: str
    colour: tuple[int, int, int]
    category: Code = TISSUE
    type: Code = TISSUE
    layer: int = 0


def label_colour(label: int) -> tuple[int, int, int]:
    """The colour of ``label`` (:data:`LABEL_COLOURS`, repeated)."""
    return LABEL_COLOURS[(int(label) - 1) % len(LABEL_COLOURS)]


def segments_of(labels: np.ndarray, names: Mapping[int, str] | None = None,
                codes: Mapping[int, tuple[Code, Code]] | None = None) -> list[Segment]:
    """One :class:`Segment` per label present in ``labels`` or named in ``names`` (an object
    that came out empty keeps its place), in label order; ``codes[label]`` is its
    (category, type), else the generic :data:`TISSUE` for both."""
    names, codes = dict(names or {}), dict(codes or {})
    present = {int(v) for v in np.unique(labels) if v > 0}
    return [Segment(label, names.get(label) or f"label {label}", label_colour(label),
                    *codes.get(label, (TISSUE, TISSUE)))
            for label in sorted(present | {k for k in names if k > 0})]


def _extent(labels: np.ndarray, label: int) -> str:
    """Slicer's inclusive ``i0 i1 j0 j1 k0 k1`` (x, y, z) of ``label``; 2D maps have k = 0."""
    where = np.nonzero(labels == label)
    if where[0].size == 0:
        return "0 -1 0 -1 0 -1"
    bounds = [(int(a.min()), int(a.max())) for a in where[::-1]]   # (x, y[, z])
    bounds += [(0, 0)] * (3 - len(bounds))
    return " ".join(f"{lo} {hi}" for lo, hi in bounds)


def _terminology(segment: Segment) -> str:
    """Slicer's ``TerminologyEntry`` tag for the segment's category and type."""
    return ("Segmentation category and type - 3D Slicer General Anatomy list"
            f"~{segment.category}~{segment.type}~^^~Anatomic codes - DICOM master list~^^~^^")


def slicer_fields(labels: np.ndarray, segments: Sequence[Segment]) -> dict[str, str]:
    """The key/value header fields of a Slicer ``.seg.nrrd`` holding ``labels`` (one layer)."""
    fields = {"Segmentation_MasterRepresentation": "Binary labelmap",
              "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
              "Segmentation_ReferenceImageExtentOffset": "0 0 0"}
    for i, s in enumerate(segments):
        key = f"Segment{i}_"
        fields.update({
            key + "Color": " ".join(f"{c / 255:.6g}" for c in s.colour),
            key + "ColorAutoGenerated": "0",
            key + "Extent": _extent(labels, s.label),
            key + "ID": f"Segment_{s.label}",
            key + "LabelValue": str(s.label),
            key + "Layer": str(s.layer),
            key + "Name": s.name,
            key + "NameAutoGenerated": "0",
            key + "Tags": f"Segmentation.Status:inprogress|TerminologyEntry:{_terminology(s)}|",
        })
    return fields


def _header_fields(path: Path) -> dict[str, str]:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(f"{path}: cannot read its NRRD header") from None
    return {k: reader.GetMetaData(k) for k in reader.GetMetaDataKeys()}


def _codes(tags: str) -> tuple[Code, Code]:
    """Category and type from Slicer's ``TerminologyEntry`` tag (the generic code without one)."""
    match = re.search(r"TerminologyEntry:[^~|]*~([^~|]*)~([^~|]*)", tags)
    codes = []
    for text in match.groups() if match else ("", ""):
        try:
            codes.append(Code.parse(text))
        except InputError:
            codes.append(TISSUE)
    return codes[0], codes[1]


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """The segments a ``.seg.nrrd`` header describes (Slicer's or ours), in its order.

    Raises:
        InputError: the header is unreadable, or a segment lacks its label value or a
            readable colour.
    """
    path = Path(path)
    fields = _header_fields(path)
    out = []
    i = 0
    while f"Segment{i}_ID" in fields or f"Segment{i}_LabelValue" in fields:
        get = lambda name, i=i: fields.get(f"Segment{i}_{name}", "")   # noqa: E731
        try:
            label = int(get("LabelValue"))
            colour = tuple(int(round(float(c) * 255)) for c in get("Color").split()) or label_colour(label)
            layer = int(get("Layer") or 0)
        except ValueError:
            raise InputError(f"{path}: segment {i} ({get('ID')!r}) has an unreadable label value, colour "
                             f"or layer") from None
        if len(colour) != 3:
            raise InputError(f"{path}: segment {i} ({get('ID')!r}): its colour {get('Color')!r} is not r g b")
        category, kind = _codes(get("Tags"))
        out.append(Segment(label, get("Name") or f"label {label}", (colour[0], colour[1], colour[2]),
                           category, kind, layer))
        i += 1
    return out
