"""How accurate a box-prompted model is on images with reference masks.

Boxes are drawn from the reference as a user would draw them, then the image goes
through the same path as ``medsam segment`` (:func:`~medsam.intensity.prepare_intensities`,
then :func:`~medsam.segmentation.segment`), and each reference label is scored
with DSC and NSD against what the model made of its boxes.

* 2D: one box per object, an object being a connected component (8-connectivity)
  of a label; the box is the object's tight pixel box.
* 3D, prompt ``"box"``: one 3D box per label, ``x0, y0, z0, x1, y1, z1`` (the key
  slice is its middle slice; the mask is propagated up and down within it).
* 3D, prompt ``"key_slice"``: one 2D box on the slice where the label is largest
  (as for RECIST lesions); the mask is propagated until it vanishes.
* With ``shift`` > 0 every side of every box grows by a random 0..shift pixels, where
  ``shift`` is given at 1024 pixels (the paper's 0-20 px) and scaled to the image.

Objects smaller than the dataset's ``min_pixels`` (per 2D object / slice) or
``min_voxels`` (3D) are dropped from the reference first, as the paper's data
preparation does; they get no box and are not scored.

NSD uses a 2 mm tolerance where the image has a physical pixel size, else 2 pixels
(the row's ``unit`` says which).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Iterator, Sequence

import numpy as np
from scipy import ndimage

from ..datasets.cases import remove_small_components
from ..datasets.description import DatasetSpec
from ..io.geometry import Geometry
from ..metrics import dice, normalized_surface_distance
from ..prompt_geometry import mask_to_box, perturb_box
from ..segmentation.prompts import BoxPrompt
from ..segmentation.segmenter import Segmenter2D

#: box settings: name -> maximum growth of each side, in pixels at 1024 (paper: 0-20 px)
BOX_SETTINGS: dict[str, int] = {"tight": 0, "perturbed": 20}


@dataclass(frozen=True)
class AccuracyRow:
    """One reference label of one case under one box setting.

    ``dsc`` and ``nsd`` are in [0, 1]; ``tolerance`` is NSD's tolerance in ``unit``
    (``"mm"``, or ``"px"`` when the image has no physical pixel size); ``objects`` is
    how many boxes the label was given. ``name`` is the label's class, or ``"object"``
    for the instance labels of a dataset without classes (nuclei: one row per object).
    """

    dataset: str
    case: str
    label: int
    name: str
    setting: str
    dsc: float
    nsd: float
    tolerance: float
    unit: str
    objects: int
    reference_size: int
    predicted_size: int


@dataclass(frozen=True)
class ReferencePrompts:
    """Boxes drawn from a reference label map.

    ``prompts`` carry prompt ids 1..N as their labels; ``groups`` maps each reference
    label to the prompt ids of its objects; ``reference`` is the label map that is
    scored (small objects removed).
    """

    prompts: tuple[BoxPrompt, ...]
    groups: dict[int, tuple[int, ...]]
    reference: np.ndarray


def _components(mask: np.ndarray) -> list[np.ndarray]:
    structure = np.ones((3,) * mask.ndim, dtype=bool)
    labelled, count = ndimage.label(mask, structure=structure)
    return [labelled == i for i in range(1, count + 1)]


def _shift_px(shift: int, shape: Sequence[int]) -> int:
    return int(round(shift * max(shape) / 1024))


def _box_2d(mask: np.ndarray, shift: int, rng: np.random.Generator) -> tuple[float, ...]:
    box = mask_to_box(mask)
    assert box is not None
    h, w = mask.shape
    return tuple(float(v) for v in perturb_box(box, _shift_px(shift, (h, w)), (h, w), rng))


def reference_prompts(reference: np.ndarray, ndim: int, prompt: str = "box",
                      min_pixels: int = 100, min_voxels: int = 1000, shift: int = 0,
                      rng: np.random.Generator | None = None) -> ReferencePrompts:
    """Boxes a user would draw for the objects of ``reference`` (see the module docstring).

    Args:
        reference: integer label map, ``(y, x)`` (``ndim`` 2) or ``(z, y, x)`` (``ndim`` 3).
        prompt: ``"box"`` or ``"key_slice"`` (3D only).
        shift: maximum growth of each box side in pixels at 1024 (0: tight boxes).
        rng: random generator for the growth (default: seeded with 0).
    """
    if prompt not in ("box", "key_slice"):
        raise ValueError(f"prompt must be 'box' or 'key_slice', got {prompt!r}")
    rng = rng if rng is not None else np.random.default_rng(0)
    reference = np.asarray(reference)
    kept = np.zeros_like(reference)
    prompts: list[BoxPrompt] = []
    groups: dict[int, tuple[int, ...]] = {}
    for label in (int(v) for v in np.unique(reference) if v != 0):
        mask = reference == label
        if ndim == 2:
            objects = [c for c in _components(mask) if c.sum() >= min_pixels]
            ids = []
            for obj in objects:
                kept[obj] = label
                prompts.append(BoxPrompt(_box_2d(obj, shift, rng), label=len(prompts) + 1))
                ids.append(len(prompts))
            if ids:
                groups[label] = tuple(ids)
            continue
        mask = remove_small_components(mask, min_voxels)
        mask &= np.stack([remove_small_components(s, min_pixels) for s in mask])
        if not mask.any():
            continue
        kept[mask] = label
        areas = mask.reshape(mask.shape[0], -1).sum(axis=1)
        if prompt == "key_slice":
            key = int(np.argmax(areas))
            prompts.append(BoxPrompt(_box_2d(mask[key], shift, rng), label=len(prompts) + 1,
                                     slice=key))
        else:
            zs = np.flatnonzero(areas)
            x0, y0, x1, y1 = _box_2d(np.asarray(mask.any(axis=0)), shift, rng)
            prompts.append(BoxPrompt((x0, y0, float(zs[0]), x1, y1, float(zs[-1])),
                                     label=len(prompts) + 1))
        groups[label] = (len(prompts),)
    return ReferencePrompts(tuple(prompts), groups, kept)


def score_labels(predicted: np.ndarray, refs: ReferencePrompts, geometry: Geometry,
                 tolerance_mm: float = 2.0) -> list[tuple[int, float, float, int, int]]:
    """(label, DSC, NSD, reference size, predicted size) for each reference label, its
    prediction being the union of its objects' masks in ``predicted`` (prompt ids)."""
    spacing = geometry.spacing if geometry.spacing_known else (1.0,) * geometry.ndim
    rows = []
    for label, ids in refs.groups.items():
        pred = np.isin(predicted, ids)
        gt = refs.reference == label
        rows.append((label, dice(pred, gt),
                     normalized_surface_distance(pred, gt, spacing, tolerance=tolerance_mm),
                     int(gt.sum()), int(pred.sum())))
    return rows


def case_predictions(spec: DatasetSpec, segmenters: Sequence[Segmenter2D], settings: Sequence[str] = ("tight",),
                     max_cases: int | None = None, seed: int = 0, progress: bool = False,
                     cases: Collection[str] | None = None
                     ) -> Iterator[tuple[str, Geometry, str, ReferencePrompts, list[np.ndarray]]]:
    """Segment each case of a dataset from reference boxes with every segmenter.

    Yields ``(case, geometry, setting, refs, predictions)`` per case and box setting,
    ``predictions`` holding one label map of prompt ids per segmenter (same boxes).
    ``cases``: only these case ids (of the first ``max_cases``); a case's boxes do not
    depend on which others are chosen. Other arguments as for :func:`evaluate_dataset`.
    """
    from ..datasets.cases import find_dataset_cases, read_case, select_labels
    from ..intensity import prepare_intensities
    from ..progress import progress_bar
    from ..segmentation import segment

    unknown = [s for s in settings if s not in BOX_SETTINGS]
    if unknown:
        raise ValueError(f"unknown box settings {unknown}; known: {', '.join(BOX_SETTINGS)}")
    chosen = [(index, files) for index, files in enumerate(find_dataset_cases(spec)[:max_cases])
              if cases is None or files.case in cases]
    for index, files in progress_bar(chosen, desc=spec.name, unit="case", enabled=progress):
        image, raw, geometry = read_case(spec, files)
        labels = select_labels(spec, raw)
        intensity = spec.intensity
        modality = None if intensity.mode == "none" else spec.modality
        prepared = prepare_intensities(image, geometry, modality, intensity.window,
                                       intensity.level, intensity.width)
        for setting in settings:
            rng = np.random.default_rng([seed, index])
            refs = reference_prompts(labels, geometry.ndim, spec.prompt, spec.min_pixels,
                                     spec.min_voxels, BOX_SETTINGS[setting], rng)
            if not refs.prompts:
                continue
            # slices named by their contents: reused across settings, and on disk where the
            # segmenter has a store (medsam.segmentation.embedding_store)
            predictions = [segment(prepared, geometry, refs.prompts, segmenter) for segmenter in segmenters]
            yield files.case, geometry, setting, refs, predictions


def evaluate_dataset(spec: DatasetSpec, segmenter: Segmenter2D, settings: Sequence[str] = ("tight", "perturbed"),
                     max_cases: int | None = None, seed: int = 0,
                     progress: bool = False) -> list[AccuracyRow]:
    """Segment the cases of a dataset description entry from reference boxes and score them.

    Args:
        spec: a :class:`medsam.datasets.description.DatasetSpec` (images, labels, modality,
            intensity, label selection, ``min_pixels``/``min_voxels``, ``prompt``).
        segmenter: a :class:`~medsam.segmentation.MedSAMSegmenter` (or any ``Segmenter2D``);
            a case's slice embeddings are reused across the box settings.
        settings: names in :data:`BOX_SETTINGS`.
        max_cases: the first N cases (sorted by name) only.
        seed: seeds the box perturbation (per case, so a subset gives the same boxes).
    Returns:
        one :class:`AccuracyRow` per case, label and setting.
    """
    rows: list[AccuracyRow] = []
    for case, geometry, setting, refs, (predicted,) in case_predictions(
            spec, [segmenter], settings, max_cases, seed, progress):
        unit = "mm" if geometry.spacing_known else "px"
        for label, dsc, nsd, ref_size, pred_size in score_labels(predicted, refs, geometry):
            name = "object" if spec.classes is None else spec.class_name(label)
            rows.append(AccuracyRow(spec.name, case, label, name, setting,
                                    dsc, nsd, 2.0, unit, len(refs.groups[label]), ref_size,
                                    pred_size))
    return rows


def median_table(rows: Sequence[AccuracyRow], by: str = "dataset") -> list[dict[str, Any]]:
    """Median DSC and NSD (and their IQR) per dataset and setting.

    ``by="dataset"``: every row of a dataset pooled (labels and objects alike; the test
    suite's regression floors). ``by="structure"``: one line per dataset, structure
    (class, or ``"object"``) and setting, over one value per image, the mean over the
    image's objects of that structure (objects of one image are not independent cases).
    ``cases`` counts images, ``labels`` the rows behind them.
    """
    if by not in ("dataset", "structure"):
        raise ValueError(f"by must be 'dataset' or 'structure', got {by!r}")
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    names = list(dict.fromkeys(r.name for r in rows))

    def key(r: AccuracyRow) -> tuple:
        return (r.dataset, r.name if by == "structure" else "", r.setting)

    table = []
    for k in sorted({key(r) for r in rows}, key=lambda k: (datasets.index(k[0]), names.index(k[1]) if k[1] else 0,
                                                          list(BOX_SETTINGS).index(k[2]))):
        group = [r for r in rows if key(r) == k]
        if by == "structure":
            cases = list(dict.fromkeys(r.case for r in group))
            dsc = np.array([np.mean([r.dsc for r in group if r.case == c]) for c in cases])
            nsd = np.array([np.mean([r.nsd for r in group if r.case == c]) for c in cases])
        else:
            dsc, nsd = np.array([r.dsc for r in group]), np.array([r.nsd for r in group])
        table.append({
            "dataset": k[0], "structure": k[1] or "all", "setting": k[2], "cases": len({r.case for r in group}),
            "labels": len(group), "dsc_median": float(np.median(dsc)),
            "dsc_q1": float(np.percentile(dsc, 25)), "dsc_q3": float(np.percentile(dsc, 75)),
            "nsd_median": float(np.median(nsd)), "nsd_q1": float(np.percentile(nsd, 25)),
            "nsd_q3": float(np.percentile(nsd, 75)),
            "nsd_tolerance": f"{group[0].tolerance:g} {group[0].unit}",
        })
    return table


def table_markdown(table: Sequence[dict[str, Any]]) -> str:
    """The :func:`median_table` as a Markdown table (percent, median [IQR])."""
    lines = ["| dataset | structure | boxes | images | rows (labels, objects) | DSC % median [IQR] | "
             "NSD % median [IQR] | NSD tolerance |",
             "|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(
            f"| {t['dataset']} | {t['structure']} | {t['setting']} | {t['cases']} | {t['labels']} | "
            f"{100 * t['dsc_median']:.1f} [{100 * t['dsc_q1']:.1f}, {100 * t['dsc_q3']:.1f}] | "
            f"{100 * t['nsd_median']:.1f} [{100 * t['nsd_q1']:.1f}, {100 * t['nsd_q3']:.1f}] | "
            f"{t['nsd_tolerance']} |")
    return "\n".join(lines)
