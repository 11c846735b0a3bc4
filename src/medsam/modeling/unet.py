"""The box-cropped U-Net specialist of the MedSAM paper's comparison, as a model with
the same call as a SAM model's box path.

The paper's U-Net baselines are trained, one per image category, on images cropped
to the boxes. :class:`BoxUNet` does the cropping itself, so that it takes exactly
what the SAM decoder takes and gives exactly what it gives:

* input: ``images`` (B, 3, S, S), the model transform's padded input frame (the
  LiteMedSAM transform: S = 256, values in [0, 1]); ``boxes`` (B, 4) XYXY in that
  frame's pixels (continuous coordinates: pixel i covers [i, i + 1));
* the box, grown by ``margin`` of its size on every side, is resampled bilinearly
  to a ``crop_size`` square and segmented by MONAI's nnU-Net-style ``DynUNet``;
* output: logits (B, 1, 256, 256) in the low-resolution frame of SAM's decoder (the
  input frame at 256 / S scale): the crop's logits resampled back into place, and
  ``OUTSIDE_LOGIT`` (probability ~0) outside the grown box.

So the trainer, the tuning metric, the predictor's post-processing and every tool
that segments with a :class:`~medsam.segmentation.segmenter.Segmenter2D` work on it
unchanged. MONAI is an optional dependency (``pip install 'medsam-toolkit[unet]'``), imported
when a network is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError, install_hint
from .info import DescribedModel, ModelInfo

#: the variant name of box-cropped U-Nets in checkpoints and on the command line
UNET_VARIANT = "unet"
#: logit given to the low-resolution pixels outside the (grown) box
OUTSIDE_LOGIT = -20.0
LOW_RES = 256


@dataclass(frozen=True)
class UNetConfig:
    """A :class:`BoxUNet`: crop side in pixels, DynUNet filters per level (each level
    halves the crop; at least 3; ``crop_size`` must be divisible by 2 ** (levels - 1)), box margin
    as a fraction of the box side, and the input frame's side."""

    crop_size: int = 128
    filters: tuple[int, ...] = (16, 32, 64, 128, 256)
    margin: float = 0.1
    image_size: int = 256

    def __post_init__(self) -> None:
        levels = len(self.filters)
        if levels < 3:
            raise InputError(f"a U-Net needs at least 3 levels of filters, got {len(self.filters)}")
        if self.crop_size % 2 ** (levels - 1):
            raise InputError(f"U-Net crop size {self.crop_size} is not divisible by "
                             f"2^{levels - 1} ({levels} levels)")
        if not 0 <= self.margin < 1:
            raise InputError(f"U-Net box margin must be in [0, 1), got {self.margin}")

    @classmethod
    def from_record(cls, record: Any) -> UNetConfig:
        """The config saved by :meth:`record` (defaults for what a record lacks)."""
        if not isinstance(record, dict):
            return cls()
        known = {k: record[k] for k in ("crop_size", "margin", "image_size") if k in record}
        if "filters" in record:
            known["filters"] = tuple(int(v) for v in record["filters"])
        return cls(**known)

    def record(self) -> dict:
        return {**asdict(self), "filters": list(self.filters)}


def _dynunet(config: UNetConfig) -> nn.Module:
    try:
        from monai.networks.nets import DynUNet
    except ImportError:
        raise InputError(f"the U-Net needs MONAI: {install_hint('unet')}") from None
    levels = len(config.filters)
    strides = [[1, 1]] + [[2, 2]] * (levels - 1)
    return DynUNet(spatial_dims=2, in_channels=3, out_channels=1, kernel_size=[[3, 3]] * levels,
                   strides=strides, upsample_kernel_size=strides[1:], filters=list(config.filters),
                   norm_name="instance", res_block=True)


def _crop_grid(boxes: torch.Tensor, size: int, frame: int) -> torch.Tensor:
    """Sampling grid (B, size, size, 2) of each box's ``size`` x ``size`` crop, in
    ``grid_sample``'s normalised coordinates of a ``frame`` x ``frame`` image."""
    steps = (torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5) / size
    x = boxes[:, 0:1] + steps[None] * (boxes[:, 2:3] - boxes[:, 0:1])   # (B, size)
    y = boxes[:, 1:2] + steps[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    gx = (2 * x / frame - 1)[:, None, :].expand(-1, size, -1)
    gy = (2 * y / frame - 1)[:, :, None].expand(-1, -1, size)
    return torch.stack([gx, gy], dim=-1)


def _paste_grid(boxes: torch.Tensor, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid (B, 256, 256, 2) of each low-resolution pixel in its box's crop, in
    normalised crop coordinates; inside (B, 1, 256, 256) bool)."""
    centres = (torch.arange(LOW_RES, device=boxes.device, dtype=boxes.dtype) + 0.5) * frame / LOW_RES
    width = (boxes[:, 2:3] - boxes[:, 0:1]).clamp(min=1e-3)
    height = (boxes[:, 3:4] - boxes[:, 1:2]).clamp(min=1e-3)
    u = (centres[None] - boxes[:, 0:1]) / width      # (B, 256) in [0, 1] inside
    v = (centres[None] - boxes[:, 1:2]) / height
    grid = torch.stack([(2 * u - 1)[:, None, :].expand(-1, LOW_RES, -1),
                        (2 * v - 1)[:, :, None].expand(-1, -1, LOW_RES)], dim=-1)
    inside = ((u >= 0) & (u <= 1))[:, None, :] & ((v >= 0) & (v <= 1))[:, :, None]
    return grid, inside[:, None]


class BoxUNet(DescribedModel, nn.Module):
    """(images (B, 3, S, S), boxes (B, 4) input frame) -> logits (B, 1, 256, 256); see the
    module docstring. ``info``: what the model is and what its weights are, as a ``Sam``
    has it (:class:`~medsam.modeling.info.ModelInfo`)."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.net = _dynunet(config)
        self.info = ModelInfo(UNET_VARIANT, config.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def grown_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """``boxes`` (B, 4) grown by ``margin`` of their width and height on every side."""
        boxes = boxes.to(torch.float32)
        dx = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0) * self.config.margin
        dy = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0) * self.config.margin
        return torch.stack([boxes[:, 0] - dx, boxes[:, 1] - dy,
                            boxes[:, 2] + dx + 1, boxes[:, 3] + dy + 1], dim=1)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            raise ValueError(f"expected ({self.image_size}, {self.image_size}) inputs, got "
                             f"{tuple(images.shape[-2:])}")
        grown = self.grown_boxes(boxes.to(images.device))
        size = self.config.crop_size
        crops = F.grid_sample(images.float(), _crop_grid(grown, size, self.image_size),
                              mode="bilinear", padding_mode="zeros", align_corners=False)
        logits = self.net(crops)
        grid, inside = _paste_grid(grown, self.image_size)
        pasted = F.grid_sample(logits.float(), grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        return torch.where(inside, pasted, torch.full_like(pasted, OUTSIDE_LOGIT))


def build_unet(config: UNetConfig = UNetConfig()) -> BoxUNet:
    """A randomly initialised :class:`BoxUNet` in eval mode."""
    return BoxUNet(config).eval()
