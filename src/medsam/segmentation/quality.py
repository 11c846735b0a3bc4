"""A quality signal on every object: the model's own predicted IoU, and warnings where a
result is probably wrong.

SAM's mask decoder predicts the IoU of each mask it makes with the object it was asked for
(its IoU head). medsam keeps it per slice (:attr:`SliceRunner.scores
<medsam.segmentation.runner.SliceRunner>`) and sums it up per object:

* ``predicted_iou``: the mean over the object's slices, each weighted by its mask's area
  (2D: the one mask's);
* ``key_iou``: on the key slice, where the user's box was drawn.

:func:`object_quality` adds warnings:

* the predicted IoU is below :data:`LOW_IOU` (calibrated on the shared data:
  ``docs/reliability.md``, ``benchmarks/calibrate_quality.py``);
* the mask is empty;
* in 3D, the walk stopped at the key slice although the slice range allowed more (a box on
  the wrong structure often gives one slice only), or, with no slice range given, the mask
  runs from the first slice of the volume to the last (a spill through the volume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: predicted IoU under which an object is flagged (see the module docstring)
LOW_IOU = 0.80


@dataclass(frozen=True)
class ObjectQuality:
    """The quality signal of one object (see the module docstring).

    Attributes:
        label: the object's label id.
        predicted_iou: area-weighted mean of the model's predicted IoU over its slices;
            None when the segmenter gives none (a U-Net, a callable).
        key_iou: the predicted IoU on the key slice (2D: the image), or None.
        slices: slices the mask covers (1 in 2D).
        warnings: why the result is probably wrong; empty when nothing is suspect.
    """

    label: int
    predicted_iou: float | None
    key_iou: float | None
    slices: int
    warnings: tuple[str, ...] = ()

    @property
    def suspect(self) -> bool:
        return bool(self.warnings)

    def as_dict(self) -> dict:
        """Plain values for JSON / CSV outputs."""
        return {"label": self.label,
                "predicted_iou": None if self.predicted_iou is None else round(self.predicted_iou, 4),
                "key_iou": None if self.key_iou is None else round(self.key_iou, 4),
                "slices": self.slices, "warnings": list(self.warnings)}


def object_quality(label: int, mask: np.ndarray, scores: Mapping[int, float], key_slice: int = 0,
                   z_range: tuple[int, int] | None = None, range_given: bool = True,
                   low_iou: float = LOW_IOU) -> ObjectQuality:
    """The quality signal of one object.

    Args:
        label: its label id.
        mask: ``(y, x)`` or ``(z, y, x)`` bool.
        scores: slice -> the model's predicted IoU there (slice 0 in 2D).
        key_slice: where the box was drawn.
        z_range: the slices the object was allowed to cover (3D), inclusive.
        range_given: the user gave ``z_range`` (else it is the whole volume).
        low_iou: the flagging threshold.
    """
    mask = np.asarray(mask, dtype=bool)
    volume = mask if mask.ndim == 3 else mask[None]
    areas = volume.reshape(volume.shape[0], -1).sum(axis=1)
    covered = [int(z) for z in np.flatnonzero(areas)]
    scored = [(float(scores[z]), float(areas[z])) for z in covered if z in scores]
    weight = sum(a for _, a in scored)
    predicted = sum(s * a for s, a in scored) / weight if weight else None
    key = scores.get(key_slice)
    warnings = []
    if not covered:
        warnings.append("the mask is empty")
    if predicted is not None and predicted < low_iou:
        warnings.append(f"the model's predicted IoU is low ({predicted:.2f} < {low_iou:.2f}): the box may "
                        f"not fit the object, or hold another structure")
    if mask.ndim == 3 and covered:
        first, last = (z_range if z_range is not None else (0, volume.shape[0] - 1))
        if len(covered) == 1 and covered[0] == key_slice and last > first:
            warnings.append(f"the object covers its key slice {key_slice} only, although slices "
                            f"{first}..{last} were allowed")
        if not range_given and covered[0] == 0 and covered[-1] == volume.shape[0] - 1 and volume.shape[0] > 2:
            warnings.append("the mask runs through every slice of the volume: it may have spilled "
                            "into a neighbouring structure; give the object's slice range")
    return ObjectQuality(label=int(label), predicted_iou=predicted, key_iou=key,
                         slices=len(covered), warnings=tuple(warnings))
