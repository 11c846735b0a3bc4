"""Methods that need no model, for tests of scoring, statistics and pages on real data:
the reference box itself as the mask, and the box shrunk (two real, if crude, baselines
that differ), and stardist's one image of 125 nuclei scored one by one."""

from __future__ import annotations

import numpy as np

from medsam.segmentation import CallableSegmenter

#: stardist's description entry (one image; its labels are instances: no classes)
STARDIST = {"name": "stardist", "modality": "microscopy", "images": "stardist_nuclei/img2d.tif",
            "labels": "stardist_nuclei/mask2d.tif", "min_pixels": 20, "external": True}


def box_as_mask(image: np.ndarray, box, shrink: float = 0.0) -> np.ndarray:
    """The pixels inside ``box`` (x0, y0, x1, y1), each side moved in by ``shrink`` / 2
    of the box's size."""
    mask = np.zeros(image.shape[:2], bool)
    x0, y0, x1, y1 = box
    dx, dy = shrink * (x1 - x0) / 2, shrink * (y1 - y0) / 2
    mask[int(round(y0 + dy)):int(round(y1 - dy)) + 1, int(round(x0 + dx)):int(round(x1 - dx)) + 1] = True
    return mask


def two_methods(first: str = "box", second: str = "shrunk") -> dict[str, CallableSegmenter]:
    """``first``: the box as the mask; ``second``: the box shrunk by a quarter."""
    return {first: CallableSegmenter(box_as_mask),
            second: CallableSegmenter(lambda image, box: box_as_mask(image, box, 0.25))}


def nuclei_rows(shared_data, first: str = "box", second: str = "shrunk") -> dict[str, list]:
    """Method -> the 125 result rows of stardist's nuclei (tight boxes), and the
    description they come from."""
    from medsam.datasets.description import parse_description
    from medsam.protocol.predict import evaluate_methods

    description = parse_description({"datasets": [STARDIST]}, shared_data)
    rows = evaluate_methods(description.datasets[0], two_methods(first, second), {"img2d"}, ("tight",))["tight"]
    return {m: [r for r in rows if r.method == m] for m in (first, second)}
