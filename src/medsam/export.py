"""Exported graphs of a loaded model, for runtimes without PyTorch (ONNX Runtime, OpenVINO).

:func:`export_onnx` writes three files into a folder:

``image_encoder.onnx``
    ``image`` float32 ``(1, 3, S, S)`` (the model input, see ``preprocessing.json``) ->
    ``embeddings`` float32 ``(1, 256, 64, 64)``.
``prompt_decoder.onnx``
    the prompt encoder and the mask decoder: ``embeddings`` ``(1, 256, 64, 64)`` and
    ``boxes`` float32 ``(N, 4)`` XYXY in input-frame pixels, N dynamic -> ``low_res_logits``
    ``(N, 1, 256, 256)`` and ``iou`` ``(N, 1)``.
``preprocessing.json``
    what turns an image into ``image``, boxes into ``boxes`` and logits into masks, for
    the model's transform (:mod:`medsam.transforms`), with the model's name and sizes.

The graphs are the model's own modules traced (``torch.onnx``, opset 17): their outputs
equal ours to float rounding (tested with ONNX Runtime on real images).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InputError, install_hint
from .fileutil import atomic_folder

#: ONNX opset of the exported graphs
OPSET = 17

#: per transform: the steps ``preprocessing.json`` states (sizes filled in from the model)
STEPS: dict[str, dict[str, Any]] = {
    "litemedsam": {
        "resize": "longest side to image_size, keeping the aspect ratio, by area averaging "
                  "(OpenCV INTER_AREA) on uint8 RGB",
        "intensity": "min-max of the resized image to [0, 1] (all channels together)",
        "pad": "zeros at the bottom and right to image_size x image_size",
        "boxes": "XYXY original pixels x image_size / max(H, W), floored",
        "masks": "low_res_logits[..., :h, :w] (h, w: the resized size), bilinear "
                 "(half-pixel centres) to (H, W), mask where logit > 0",
    },
    "medsam": {
        "resize": "to image_size x image_size (bicubic spline with anti-aliasing, as "
                  "skimage.transform.resize order=3), then uint8",
        "intensity": "min-max to [0, 1]",
        "pad": "none",
        "boxes": "XYXY original pixels x (image_size / W, image_size / H)",
        "masks": "sigmoid(low_res_logits), bilinear (half-pixel centres) to (H, W), mask where > 0.5",
    },
    "sam": {
        "resize": "longest side to image_size (PIL bicubic) on uint8 RGB",
        "intensity": "(pixel - mean) / std per channel, mean (123.675, 116.28, 103.53), "
                     "std (58.395, 57.12, 57.375)",
        "pad": "zeros at the bottom and right to image_size x image_size",
        "boxes": "XYXY original pixels x (w / W, h / H) (h, w: the resized size)",
        "masks": "low_res_logits bilinear to image_size, [..., :h, :w], bilinear to (H, W), "
                 "mask where logit > 0",
    },
}


class ImageEncoderGraph(nn.Module):
    """The image encoder alone: ``image`` (1, 3, S, S) -> ``embeddings`` (1, 256, 64, 64)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.image_encoder: nn.Module = model.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class PromptDecoderGraph(nn.Module):
    """Prompt encoder and mask decoder on box prompts: (embeddings (1, 256, 64, 64), boxes
    (N, 4) input-frame XYXY) -> (low_res_logits (N, 1, 256, 256), iou (N, 1))."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder

    def forward(self, embeddings: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from .modeling.sam import decode_prompts

        return decode_prompts(self, embeddings, boxes=boxes)


def preprocessing(model: Any) -> dict[str, Any]:
    """What ``preprocessing.json`` holds for ``model``."""
    from .transforms import get_transform

    transform = get_transform(model.info.transform or _default_transform(model))
    return {"model": model.info.weights, "variant": model.variant,
            "transform": transform.name, "image_size": transform.image_size, "opset": OPSET,
            "inputs": {"image": [1, 3, transform.image_size, transform.image_size], "boxes": ["N", 4]},
            "outputs": {"embeddings": [1, 256, 64, 64], "low_res_logits": ["N", 1, 256, 256], "iou": ["N", 1]},
            "steps": STEPS[transform.name]}


def _default_transform(model: Any) -> str:
    from .modeling.registry import model_kind

    return model_kind(model.variant).transform


def export_onnx(model: Any, folder: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
    """Write ``model``'s graphs and ``preprocessing.json`` into ``folder`` (see the module
    docstring), all at once (a temporary folder renamed into place).

    Returns:
        ``{"image_encoder": path, "prompt_decoder": path, "preprocessing": path}``.
    Raises:
        InputError: ``folder`` exists without ``overwrite``, or the model is not a
            promptable SAM-family model.
    """
    from .modeling.registry import model_kind

    if not model_kind(getattr(model, "variant", "")).promptable:
        raise InputError(f"ONNX export covers the promptable SAM-family models; this is a "
                         f"{type(model).__name__}")
    try:
        import onnx  # noqa: F401  (torch.onnx writes the graphs with it)
    except ImportError:
        raise InputError(f"ONNX export needs the onnx package: {install_hint('onnx')}") from None
    folder = Path(folder)
    size = model.image_size
    device = next(model.parameters()).device
    names = {"image_encoder": "image_encoder.onnx", "prompt_decoder": "prompt_decoder.onnx",
             "preprocessing": "preprocessing.json"}
    with atomic_folder(folder, overwrite) as tmp:
        encoder, decoder = ImageEncoderGraph(model).eval(), PromptDecoderGraph(model).eval()
        image = torch.zeros(1, 3, size, size, device=device)
        with torch.no_grad():
            embeddings = encoder(image)
        boxes = torch.tensor([[8.0, 8.0, size / 2, size / 2], [size / 4, size / 4, size - 8.0, size - 8.0]],
                             device=device)
        _export(encoder, (image,), tmp / names["image_encoder"], ["image"], ["embeddings"], {})
        _export(decoder, (embeddings, boxes), tmp / names["prompt_decoder"], ["embeddings", "boxes"],
                ["low_res_logits", "iou"], {"boxes": {0: "N"}, "low_res_logits": {0: "N"}, "iou": {0: "N"}})
        (tmp / names["preprocessing"]).write_text(json.dumps(preprocessing(model), indent=2) + "\n")
    return {key: folder / name for key, name in names.items()}


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # the tracer's notes on Python values it keeps as constants
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic or None, opset_version=OPSET, dynamo=False)
