"""Cases on disk: what to read, where to write, and which cases a folder holds.

Used by ``medsam segment`` and usable from Python:

* :func:`load_case` reads an image file, a DICOM folder or a challenge npz (with its own
  boxes) into a :class:`Case`;
* :func:`output_path_for` names the label map written for a case;
* :func:`find_cases` lists the cases of a batch folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..fileutil import existing_folder
from ..io import Geometry, extension, list_dicom_series, read, read_dicom_series, read_npz
from ..io.dispatch import supported_extensions
from ..io.npz import Interaction
from ..io.volume import select_series

#: DICOM Modality (0008,0060) -> our modality names (see medsam.intensity)
DICOM_MODALITIES = {"CT": "ct", "MR": "mr", "CR": "xray", "DX": "xray", "RF": "xray", "XA": "xray",
                    "US": "us", "MG": "mammo", "OCT": "oct", "OP": "fundus", "PT": "pet", "SM": "pathology"}

#: output extension for each input extension (inputs not listed: .nii.gz)
_OUTPUT_EXT = {".nii": ".nii", ".nii.gz": ".nii.gz", ".nrrd": ".nrrd", ".mha": ".mha",
               ".mhd": ".mha", ".nhdr": ".nrrd", ".png": ".png", ".jpg": ".png", ".jpeg": ".png",
               ".bmp": ".png", ".gif": ".png", ".tif": ".tif", ".tiff": ".tif", ".npz": ".npz"}


@dataclass(frozen=True)
class Case:
    """One image to segment.

    Attributes:
        path: the file or DICOM folder it came from.
        image: ``(y, x)`` / ``(y, x, 3)`` image or ``(z, y, x)`` volume.
        geometry: its geometry.
        boxes: boxes stored in the file (challenge npz), else None.
        modality: modality known from the file (DICOM tag), else None.
        is_npz: the case is a challenge npz (its output is an npz with ``segs``).
        interaction: the CVPR 2025 interactive challenge's boxes and clicks, else None.
    """

    path: Path
    image: np.ndarray
    geometry: Geometry
    boxes: np.ndarray | None = None
    modality: str | None = None
    is_npz: bool = False
    interaction: Interaction | None = None

    @property
    def name(self) -> str:
        return case_name(self.path)


def case_name(path: str | os.PathLike) -> str:
    """The case's name: the file name without its format extension (``.nii.gz`` and 3D
    Slicer's ``.seg.nrrd`` count as one), or the folder name. The one rule for matching
    images, references, predictions and prompts by case."""
    path = Path(path)
    if path.is_dir():
        return path.name
    if path.name.lower().endswith(".seg.nrrd"):
        return path.name[: -len(".seg.nrrd")]
    ext = extension(path)
    return path.name[: -len(ext)] if ext and path.name.lower().endswith(ext) else path.stem


#: folder names that say what a folder holds, not which data: a dataset is named by the folder above
GENERIC_FOLDERS = frozenset({"gt", "gts", "label", "labels", "labelstr", "labelsts", "mask", "masks", "seg", "segs",
                             "segmentation", "segmentations", "pred", "preds", "prediction", "predictions",
                             "reference", "references", "ground_truth", "groundtruth", "images", "imagestr",
                             "imagests", "output", "outputs", "out", "results", "test", "train", "val"})


def folder_name(path: str | os.PathLike) -> str:
    """The name a folder of cases stands for (a task, a method): its own name, or, when that
    only says what it holds (``gt``, ``labels``, ``masks``, ``pred``, ...), the nearest
    folder above it whose name does not (``kidney/test/gt`` -> ``kidney``)."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if folder.name and folder.name.lower() not in GENERIC_FOLDERS:
            return folder.name
    return path.name or "data"


def load_case(path: str | os.PathLike, series_id: str | None = None) -> Case:
    """Read one case (image file, DICOM folder, or challenge npz with its boxes).

    Raises:
        InputError: as :func:`medsam.io.read`.
    """
    path = Path(path)
    if path.is_dir():
        image, geometry = read_dicom_series(path, series_id=series_id)
        modality = DICOM_MODALITIES.get(select_series(path, series_id).modality.upper())
        return Case(path, image, geometry, modality=modality)
    if extension(path) == ".npz" and path.exists():
        npz = read_npz(path)
        return Case(path, npz.image, npz.geometry, boxes=npz.boxes, is_npz=True, interaction=npz.interaction)
    image, geometry = read(path)
    return Case(path, image, geometry)


def output_path_for(case_path: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                    ext: str | None = None) -> Path:
    """Where the label map of a case goes.

    Without ``output_dir``: beside the input, ``<name>_seg<ext>``. With ``output_dir`` (batch
    mode): ``output_dir/<name><ext>`` (npz cases keep their file name, as the challenge
    expects). ``ext`` defaults to the input's format where it can hold a label map
    (JPEG/GIF -> .png; DICOM -> .nii.gz).
    """
    case_path = Path(case_path)
    if ext is None:
        ext = ".nii.gz" if case_path.is_dir() else _OUTPUT_EXT.get(extension(case_path), ".nii.gz")
    elif ext not in supported_extensions("write"):
        raise InputError(f"output type {ext!r} cannot be written; choose one of "
                         f"{', '.join(supported_extensions('write'))}")
    name = case_name(case_path)
    if output_dir is None:
        return case_path.parent / f"{name}_seg{ext}"
    return Path(output_dir) / f"{name}{ext}"


def check_output_clashes(cases: Sequence[Path], outputs: Sequence[Path]) -> None:
    """InputError when two cases of a folder would be written to the same output
    (``a.png`` and ``a.jpg``), before any work."""
    seen: dict[Path, Path] = {}
    for case, output in zip(cases, outputs):
        if output in seen:
            raise InputError(f"{seen[output]} and {case} would both be written to {output}; "
                             f"rename one of them")
        seen[output] = case


def _holds_dicom(folder: Path) -> bool:
    try:
        list_dicom_series(folder)
    except InputError:
        return False
    return True


def find_cases(folder: str | os.PathLike) -> list[Path]:
    """The cases of a batch folder, sorted: files with a readable extension, and sub-folders
    holding a DICOM series. A folder with no such files is itself one DICOM case.

    Raises:
        InputError: the folder holds nothing to segment.
    """
    folder = existing_folder(folder)
    readable = set(supported_extensions("read")) - {".dcm", ".dicom"}
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and extension(p) in readable)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    cases = files + [d for d in subdirs if _holds_dicom(d)]
    if cases:
        return cases
    if _holds_dicom(folder):
        return [folder]
    raise InputError(f"{folder}: no images to segment (no files with extensions "
                     f"{', '.join(sorted(readable))}, and no DICOM series)")
