"""A simple intensity-threshold 2D segmenter used to test the model-independent 3D code."""

import numpy as np
from scipy import ndimage


class ThresholdSegmenter:
    """Inside the box: pixels within [lo, hi], opened, the component under the box centre,
    holes filled; empty when that component fills less than ``min_fill`` of the box.
    Records every call so tests can check what the algorithms asked for."""

    def __init__(self, lo, hi, min_fill=0.2):
        self.lo, self.hi, self.min_fill = lo, hi, min_fill
        self.image = None
        self.keys = []
        self.boxes = []

    def set_slice(self, image, key=None):
        self.image = image
        self.keys.append(key)

    def segment(self, boxes):
        return np.stack([self._one(np.asarray(b, float)) for b in np.asarray(boxes).reshape(-1, 4)])

    def _one(self, box):
        self.boxes.append(box)
        x0, y0, x1, y1 = np.round(box).astype(int)
        out = np.zeros(self.image.shape[:2], bool)
        sub = self.image[y0:y1 + 1, x0:x1 + 1]
        m = ndimage.binary_opening((sub >= self.lo) & (sub <= self.hi))
        lab, n = ndimage.label(m)
        cy, cx = sub.shape[0] // 2, sub.shape[1] // 2
        k = lab[max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2].max() if n else 0
        if k == 0:
            return out
        comp = ndimage.binary_fill_holes(lab == k)
        if comp.sum() < self.min_fill * sub.size:
            return out
        out[y0:y1 + 1, x0:x1 + 1] = comp
        return out
