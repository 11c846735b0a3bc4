"""Training samples from a prepared folder, preprocessed exactly as inference does.

Each sample is one manifest row (one object in one stored slice):

* ``image``: float32 (3, S, S), the stored uint8 slice repeated to RGB and passed
  through the model's transform (:mod:`medsam.transforms`, the same
  ``prepare_image`` that :class:`~medsam.predictor.MedSAMPredictor` uses);
* ``box``: float32 (4,) XYXY in the S x S input frame: the object's ground-truth box
  in original pixels, scaled by the transform's ``apply_boxes`` and then grown by a
  random 0..shift pixels per side (MedSAM's perturbation; ``shift`` =
  ``box_shift * S / 1024``, so 20 px at 1024 and 5 px at LiteMedSAM's 256);
* ``mask``: float32 (1, 256, 256), the object in the frame of the decoder's
  low-resolution logits (the input frame at 256 / S scale, same padding);
* ``index``: the row number.

The perturbation is drawn from a generator seeded by (seed, epoch, index), so a
sample is the same whatever the worker, rank or resume point.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from ..errors import InputError
from ..intensity import to_three_channels
from ..prompt_geometry import perturb_box
from ..transforms import LOW_RES, low_res_target

if TYPE_CHECKING:
    from ..transforms import Transform

__all__ = ["LOW_RES", "EpochBatchSampler", "PreparedDataset", "load_slice", "low_res_target", "perturb_box",
           "row_box"]


def load_slice(root: Path, row: dict) -> tuple[np.ndarray, np.ndarray]:
    """(image (H, W, 3) uint8, object mask (H, W) bool) of a manifest row."""
    path = root / row["file"]
    try:
        with np.load(path, allow_pickle=False) as data:
            image, labels = data["image"], data["labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: cannot read prepared slice ({exc})") from None
    return to_three_channels(image), labels == row["label"]


def row_box(row: dict) -> np.ndarray:
    """The row's ground-truth box x0, y0, x1, y1 in original pixels (float64)."""
    return np.array([row["x0"], row["y0"], row["x1"], row["y1"]], dtype=np.float64)


class PreparedDataset(torch.utils.data.Dataset):
    """Rows of a manifest (already filtered to one split) as training samples."""

    def __init__(self, root: str | os.PathLike, rows: list[dict], transform: Transform, box_shift: float = 20,
                 seed: int = 0, perturb: bool = True) -> None:
        self.root = Path(root)
        self.rows = rows
        self.transform = transform
        self.shift = int(round(box_shift * transform.image_size / 1024))
        self.seed = seed
        self.perturb = perturb
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        image, mask = load_slice(self.root, row)
        prepared = self.transform.prepare_image(image)
        box = self.transform.apply_boxes(row_box(row)[None], prepared.original_size)[0]
        if self.perturb:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            box = perturb_box(box, self.shift, prepared.input_size, rng)
        target = low_res_target(mask, prepared.input_size, self.transform.image_size)
        return {
            "image": torch.from_numpy(prepared.tensor),
            "box": torch.as_tensor(box, dtype=torch.float32),
            "mask": torch.from_numpy(target)[None],
            "index": index,
        }


class EpochBatchSampler:
    """Micro-batches of row indices for one rank, in a seeded order per epoch.

    Every epoch the rows are permuted with a generator seeded by (seed, epoch), and
    cut into global micro-batches of ``batch_size * world_size`` rows (the tail that
    does not fill a whole optimizer step of ``accumulation`` micro-batches is
    dropped). Rank r takes the r-th contiguous block of ``batch_size`` rows of each
    global micro-batch, so W processes with batch b see exactly the rows that one
    process with batch W*b sees. ``start`` skips that many micro-batches (resume).
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int = 0, rank: int = 0,
                 world_size: int = 1, accumulation: int = 1, start: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world_size, self.accumulation, self.start = \
            rank, world_size, accumulation, start

    @property
    def steps(self) -> int:
        """Optimizer steps per epoch."""
        return self.n // (self.batch_size * self.world_size * self.accumulation)

    def __len__(self) -> int:
        return max(0, self.steps * self.accumulation - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        global_batch = self.batch_size * self.world_size
        for micro in range(self.start, self.steps * self.accumulation):
            base = micro * global_batch + self.rank * self.batch_size
            yield [int(i) for i in order[base: base + self.batch_size]]
