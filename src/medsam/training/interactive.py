"""Interactive training: a model that learns from corrections and from the neighbouring
slice's mask (``prompt_mode: interactive``).

Each training object goes through ``click_rounds + 1`` rounds on its (frozen, cached)
image embedding, with the paper's Dice + BCE loss at every round:

1. **The first prompt**: the object's box, perturbed as in box training, or (a
   ``click_first_fraction`` of micro-batches) one click inside the object, at the
   centre of the object (the challenge's rule applied to an empty prediction) or at a
   random pixel of it.
2. **Correction rounds**: each adds one click per object, sampled from the error of
   the previous round's prediction, half of the objects by the challenge's rule (the
   centre of the largest error component, foreground where the object was missed,
   background where the mask spilled; :func:`medsam.evaluation.interactive.next_click`
   in 2D) and half at a random error pixel. One round adds no click. The previous
   round's mask goes in as SAM's dense prompt (``mask_input``), as a binary mask at
   +/- :data:`~medsam.transforms.MASK_PROMPT_LOGIT` (the form inference gives it in).
3. **Propagation samples** (a ``propagation_fraction`` of objects): the first round
   also gets a neighbouring slice's mask as ``mask_input``, with that mask's box grown by
   0-5 input pixels instead of the object's own box. In a volume the neighbour is slice
   z +/- 1 or 2 of the same object (its reference mask, perturbed half of the time);
   in 2D, or where the object has no neighbour, the object's own reference mask
   perturbed (:func:`perturb_mask`: eroded, dilated, shifted, part cut away) stands in.

Everything here works in the decoder's 256 x 256 low-resolution frame; a click at
low-resolution pixel ``(x, y)`` is the input-frame point ``(x + 0.5) * S / 256 - 0.5``.
Random draws come from generators seeded by (seed, epoch, row) for the samples and by
(seed, global step, rank, micro-batch) for the clicks, so a run is reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage

from ..evaluation.interactive import next_click
from ..modeling.sam import Sam
from ..prompt_geometry import mask_to_box
from ..transforms import LOW_RES, MASK_PROMPT_LOGIT, low_res_target
from .data import PreparedDataset, load_slice
from .losses import dice_bce_loss

#: input pixels a propagation sample's box is grown by, at most
PRIOR_MARGIN = 5


def random_click(pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator
                 ) -> tuple[tuple[int, int], bool] | None:
    """A uniformly drawn pixel of the error ``pred != gt`` (both ``(y, x)`` bool):
    ``((y, x), foreground)``, or None without error."""
    error = np.argwhere(np.asarray(pred, bool) != np.asarray(gt, bool))
    if len(error) == 0:
        return None
    y, x = (int(v) for v in error[rng.integers(len(error))])
    return (y, x), bool(gt[y, x])


def sample_click(pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator
                 ) -> tuple[tuple[int, int], bool] | None:
    """One correction click: the challenge's rule or a random error pixel, 50/50."""
    if rng.random() < 0.5:
        found = next_click(pred, gt, seed=int(rng.integers(2 ** 31)))
        if found is None:
            return None
        (y, x), foreground = found
        return (int(y), int(x)), foreground
    return random_click(pred, gt, rng)


def perturb_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong version of ``mask`` ``(y, x)`` bool (a stand-in for a neighbouring
    slice's mask): eroded or dilated by 1-6 pixels, shifted by up to 6, and sometimes a
    part cut away by a random straight line. Never empty when ``mask`` is not."""
    out = np.asarray(mask, bool).copy()
    radius = int(rng.integers(1, 7))
    if rng.random() < 0.5:
        eroded = ndimage.binary_erosion(out, iterations=radius)
        out = eroded if eroded.sum() > 0.2 * out.sum() else out
    else:
        out = ndimage.binary_dilation(out, iterations=radius)
    dy, dx = (int(v) for v in rng.integers(-6, 7, size=2))
    out = np.roll(out, (dy, dx), axis=(0, 1))
    if rng.random() < 0.3 and out.sum() > 20:
        ys, xs = np.nonzero(out)
        cy, cx = ys.mean(), xs.mean()
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[: out.shape[0], : out.shape[1]]
        side = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle) > rng.uniform(0.2, 0.8) * \
            np.sqrt(out.sum() / np.pi)
        cut = out & ~side
        out = cut if cut.sum() > 0.3 * out.sum() else out
    return out if out.any() else np.asarray(mask, bool)


class InteractiveDataset(PreparedDataset):
    """:class:`PreparedDataset` samples plus ``prior`` ((1, 256, 256) float32, the mask a
    propagation sample starts from; zeros otherwise) and ``has_prior`` (bool). A
    propagation sample's ``box`` is the prior's box grown by 0-5 input pixels.
    ``neighbours`` are the rows the neighbouring slices are looked up in (all training rows
    of the manifest, so that a slice stride does not take neighbours away)."""

    def __init__(self, root: Any, rows: list[dict], transform: Any, box_shift: float = 20, seed: int = 0,
                 propagation_fraction: float = 0.5, neighbours: list[dict] | None = None) -> None:
        super().__init__(root, rows, transform, box_shift, seed)
        self.propagation_fraction = propagation_fraction
        self.slices: dict[tuple, dict[int, dict]] = {}
        for row in neighbours if neighbours is not None else rows:
            if int(row["slice"]) >= 0:
                key = (row["dataset"], row["case"], row["label"], row["tile_y"], row["tile_x"])
                self.slices.setdefault(key, {})[int(row["slice"])] = row

    def __getitem__(self, index: int) -> dict:
        sample = super().__getitem__(index)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        prior = np.zeros((LOW_RES, LOW_RES), np.float32)
        has_prior = bool(rng.random() < self.propagation_fraction)
        if has_prior:
            low = self._prior(index, sample["mask"][0].numpy() > 0.5, rng)
            box = mask_to_box(low, 0)
            if box is None:
                has_prior = False
            else:
                scale = self.transform.image_size / LOW_RES
                grow = rng.integers(0, PRIOR_MARGIN + 1, size=4)
                limit = self.transform.image_size
                sample["box"] = torch.tensor([
                    max(0.0, box[0] * scale - grow[0]), max(0.0, box[1] * scale - grow[1]),
                    min(float(limit), (box[2] + 1) * scale + grow[2]),
                    min(float(limit), (box[3] + 1) * scale + grow[3])], dtype=torch.float32)
                prior = low.astype(np.float32)
        sample["prior"] = torch.from_numpy(prior)[None]
        sample["has_prior"] = has_prior
        return sample

    def _prior(self, index: int, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The low-res mask a propagation sample starts from: a neighbouring slice's
        reference (perturbed half of the time), else the target perturbed."""
        row = self.rows[index]
        z = int(row["slice"])
        if z >= 0:
            key = (row["dataset"], row["case"], row["label"], row["tile_y"], row["tile_x"])
            near = [self.slices[key][z + d] for d in (-2, -1, 1, 2) if z + d in self.slices.get(key, {})]
            if near:
                other = near[int(rng.integers(len(near)))]
                image, mask = load_slice(self.root, other)
                prepared_size = self.transform.prepare_image(image).input_size
                low = low_res_target(mask, prepared_size, self.transform.image_size) > 0.5
                return perturb_mask(low, rng) if rng.random() < 0.5 else low
        return perturb_mask(target, rng)


def _input_point(y: int, x: int, scale: float) -> tuple[float, float]:
    """Low-resolution pixel (y, x) -> input-frame point (x, y) (see the module docstring)."""
    return (x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5


def _as_points(clicks: list[list[tuple[float, float, int]]], device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not clicks or not clicks[0]:
        return None
    coords = torch.tensor([[c[:2] for c in row] for row in clicks], dtype=torch.float32, device=device)
    labels = torch.tensor([[c[2] for c in row] for row in clicks], dtype=torch.int64, device=device)
    return coords, labels


def decode(sam: Sam, embeddings: torch.Tensor, boxes: torch.Tensor | None,
           points: tuple[torch.Tensor, torch.Tensor] | None, masks: torch.Tensor | None,
           has_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Low-res logits (B, 1, 256, 256) from prompts; ``masks`` (B, 1, 256, 256) is the dense
    prompt of the objects where ``has_mask`` (B,) is true (all when it is None)."""
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=None)
    if masks is not None:
        given = sam.prompt_encoder.mask_downscaling(masks)
        dense = given if has_mask is None else torch.where(has_mask[:, None, None, None], given, dense)
    low, _ = sam.mask_decoder(image_embeddings=embeddings, image_pe=sam.prompt_encoder.get_dense_pe(),
                              sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                              multimask_output=False)
    return low


class InteractiveStep(nn.Module):
    """(embeddings (B, 256, 64, 64), batch, seed) -> the mean Dice + BCE loss over all rounds
    (see the module docstring). Wrapped by DistributedDataParallel in a job: the rounds run
    inside one forward."""

    def __init__(self, sam: Sam, rounds: int = 8, click_first_fraction: float = 0.2) -> None:
        super().__init__()
        self.sam = sam
        self.rounds = rounds
        self.click_first_fraction = click_first_fraction

    def forward(self, embeddings: torch.Tensor, boxes: torch.Tensor, target: torch.Tensor,
                prior: torch.Tensor, has_prior: torch.Tensor, seed: list[int]) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        device = embeddings.device
        n = embeddings.shape[0]
        gt = target[:, 0].detach().cpu().numpy() > 0.5
        scale = self.sam.image_size / LOW_RES
        clicks: list[list[tuple[float, float, int]]] = [[] for _ in range(n)]
        box_input: torch.Tensor | None = boxes
        if rng.random() < self.click_first_fraction:
            box_input = None
            for i in range(n):
                found = sample_click(np.zeros_like(gt[i]), gt[i], rng)
                (y, x), _ = found if found is not None else ((0, 0), False)
                clicks[i].append((*_input_point(y, x, scale), 1 if found else -1))
        masks = (prior * 2 - 1) * MASK_PROMPT_LOGIT
        has_mask: torch.Tensor | None = has_prior.to(device)
        quiet = int(rng.integers(1, self.rounds + 1)) if self.rounds > 1 else -1
        total = embeddings.new_zeros(())
        for r in range(self.rounds + 1):
            low = decode(self.sam, embeddings, box_input, _as_points(clicks, device), masks, has_mask)
            total = total + dice_bce_loss(low.float(), target)
            if r == self.rounds:
                break
            pred = low.detach().float()[:, 0] > 0
            if r + 1 != quiet:
                pred_np = pred.cpu().numpy()
                for i in range(n):
                    found = sample_click(pred_np[i], gt[i], rng)
                    if found is None:
                        clicks[i].append((0.0, 0.0, -1))
                    else:
                        (y, x), foreground = found
                        clicks[i].append((*_input_point(y, x, scale), int(foreground)))
            masks = (pred.float()[:, None] * 2 - 1) * MASK_PROMPT_LOGIT
            has_mask = None
        return total / (self.rounds + 1)


@torch.no_grad()
def tune_interactive(sam: Sam, transform: Any, root: Any, rows: list[dict], device: torch.device,
                     cache: Any = None, clicks: int = 3, batch_size: int = 4) -> tuple[float, int]:
    """(sum, count) of the tuning objects' mean low-resolution DSC over the box step and
    ``clicks`` clicks by the challenge's rule, each with the previous mask fed back."""
    from ..metrics.overlap import dice
    from .data import row_box

    was_training = sam.training
    sam.eval()
    total, count = 0.0, 0
    scale = sam.image_size / LOW_RES
    for start in range(0, len(rows), batch_size):
        part = rows[start:start + batch_size]
        images, boxes, targets = [], [], []
        for row in part:
            image, mask = load_slice(root, row)
            prepared = transform.prepare_image(image)
            images.append(torch.from_numpy(prepared.tensor))
            boxes.append(transform.apply_boxes(row_box(row)[None], prepared.original_size)[0])
            targets.append(low_res_target(mask, prepared.input_size, transform.image_size) > 0.5)
        x = torch.stack(images).to(device)
        embeddings = cache.get([r["file"] for r in part], x) if cache is not None else sam.image_encoder(x)
        b = torch.as_tensor(np.stack(boxes), dtype=torch.float32, device=device)
        points: list[list[tuple[float, float, int]]] = [[] for _ in part]
        masks: torch.Tensor | None = None
        scores = np.zeros(len(part))
        for step in range(clicks + 1):
            low = decode(sam, embeddings, b, _as_points(points, device), masks)
            pred = (low[:, 0] > 0).cpu().numpy()
            scores += [dice(p, t) for p, t in zip(pred, targets)]
            for i, (p, t) in enumerate(zip(pred, targets)):
                found = next_click(p, t)
                (y, x_), fg = found if found is not None else ((0, 0), False)
                points[i].append((*_input_point(y, x_, scale),
                                  int(fg) if found is not None else -1))
            masks = (torch.as_tensor(pred, device=device).float()[:, None] * 2 - 1) * MASK_PROMPT_LOGIT
        total += float((scores / (clicks + 1)).sum())
        count += len(part)
    sam.train(was_training)
    return total, count
