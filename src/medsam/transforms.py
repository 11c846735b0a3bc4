"""Model-input transforms: image resizing and normalisation, prompt scaling, and
mask post-processing, exactly as each family of weights expects.

Three transforms, one per family of weights (registry :data:`TRANSFORMS`):

``"medsam"`` (MedSAM ViT-B, ``MedSAM_Inference.py``)
    resize straight to 1024x1024 (bicubic spline with Gaussian anti-aliasing, as
    ``skimage.transform.resize(img, (1024, 1024), order=3, preserve_range=True,
    anti_aliasing=True).astype(np.uint8)``), min-max to [0, 1], no mean/std; boxes
    scaled by 1024/W and 1024/H; masks = sigmoid of the 256x256 logits, bilinear
    upsampling of the probabilities to H x W, threshold 0.5.
``"litemedsam"`` (LiteMedSAM, ``CVPR24_LiteMedSAM_infer.py``)
    longest side to 256 by area averaging (OpenCV ``INTER_AREA``), min-max to
    [0, 1], zero padding to 256x256 at the bottom/right; boxes scaled by
    256/max(H, W) and truncated to integers; masks: crop the logits to the
    resized image, bilinear to H x W, sigmoid, threshold 0.5.
``"sam"`` (Meta's SAM weights, ``segment_anything.SamPredictor``)
    longest side to 1024 (PIL bicubic), ImageNet-style pixel mean/std, zero
    padding to 1024x1024; prompts scaled per axis; logits bilinear to 1024, crop,
    bilinear to H x W, threshold 0.

Conventions: images are numpy (H, W, 3) with values in [0, 255] (uint8 or any real
dtype); boxes are XYXY and points XY in pixels of the original image (x = column).
Sizes are (height, width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PreparedImage:
    """The model input made from one image.

    ``tensor``: float32 (3, S, S) with S the model's ``image_size``;
    ``original_size``: (H, W) of the given image; ``input_size``: (h, w) of the
    part of the S x S frame that holds the resized image (the rest is padding).
    """

    tensor: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class Transform(Protocol):
    """What a model-input transform provides (one per family of weights)."""

    name: str
    image_size: int

    def prepare_image(self, image: np.ndarray) -> PreparedImage:
        """(H, W, 3) in [0, 255] -> the model input (3, S, S) with its sizes."""
        ...

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(N, 4) XYXY original pixels -> (N, 4) input-frame pixels."""
        ...

    def apply_points(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(..., 2) XY original pixels -> input-frame pixels."""
        ...

    def postprocess(self, low_res_logits: torch.Tensor, original_size: tuple[int, int],
                    input_size: tuple[int, int]) -> torch.Tensor:
        """(N, C, 256, 256) logits -> (N, C, H, W) bool masks."""
        ...


# ----------------------------------------------------------------------------- helpers


def longest_side_shape(height: int, width: int, target: int) -> tuple[int, int]:
    """(h, w) with the longest side equal to ``target``, rounded half up as SAM does."""
    scale = target / max(height, width)
    # at least one pixel: a 1 x 5000 strip would otherwise become 0 x 256
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def minmax_unit(image: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] by the array's own min and max (float64), as MedSAM does;
    a constant image gives zeros."""
    image = image.astype(np.float64)
    low, high = image.min(), image.max()
    return (image - low) / max(high - low, 1e-8)


def _bspline_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Cubic B-spline interpolation of one axis from ``n_in`` to ``n_out`` samples on the
    pixel grid (``ndimage.zoom(..., grid_mode=True)``), mirror boundary: (indices, weights),
    both (n_out, 4)."""
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(x)
    t = (x - base)[:, None]
    weights = np.hstack([(1 - t) ** 3, 3 * t ** 3 - 6 * t ** 2 + 4, -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1,
                         t ** 3]) / 6.0
    index = base.astype(np.int64)[:, None] + np.arange(-1, 3)
    if n_in == 1:
        return np.zeros_like(index), weights
    period = 2 * n_in - 2  # mirror: ... 2 1 | 0 1 ... n-1 | n-2 n-3 ...
    index = np.abs(index) % period
    return np.where(index >= n_in, period - index, index), weights


def _interpolate_axis(coefficients: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    index, weights = _bspline_taps(coefficients.shape[axis], n_out)
    shape = [1] * coefficients.ndim
    shape[axis] = n_out
    out = np.zeros(coefficients.shape[:axis] + (n_out,) + coefficients.shape[axis + 1:])
    for k in range(4):
        out += np.take(coefficients, index[:, k], axis=axis) * weights[:, k].reshape(shape)
    return out


def spline_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) to ``size`` like ``skimage.transform.resize(image, size,
    order=3, preserve_range=True, anti_aliasing=True)`` (float64 output).

    Gaussian pre-filter with sigma = max(0, (factor - 1) / 2) per axis (mirror
    boundary), then a cubic spline zoom on the pixel grid (``grid_mode``, mirror
    boundary), clipped to the input's value range. skimage zooms the channel axis
    too, at zoom 1, which gives back each channel (to rounding), so each distinct
    channel is resized once on its own, the spline evaluated separably (4 taps per
    axis); the result equals skimage's to about 1e-12.
    """
    from scipy import ndimage  # here, not at import: LiteMedSAM's path needs no scipy

    image = image.astype(np.float64)
    factors = np.divide(image.shape[:2], size)
    sigma = np.maximum(0.0, (factors - 1.0) / 2.0)
    channels = [image[..., c] for c in range(image.shape[2])]
    grey = all(np.array_equal(channels[0], c) for c in channels[1:])
    resized = []
    for channel in channels[:1] if grey else channels:
        if sigma.any():
            channel = ndimage.gaussian_filter(channel, sigma, mode="mirror")
        coefficients = ndimage.spline_filter(channel, order=3, mode="mirror")
        rows = _interpolate_axis(coefficients, size[0], axis=0)
        resized.append(_interpolate_axis(rows, size[1], axis=1))
    out = np.stack(resized * image.shape[2] if grey else resized, axis=-1)
    np.clip(out, image.min(), image.max(), out=out)
    return out


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) OpenCV ``INTER_AREA`` box weights for shrinking one axis
    (n_in >= n_out): output pixel i averages the input interval [i*s, (i+1)*s)."""
    scale = n_in / n_out
    starts = np.arange(n_out)[:, None] * scale
    src = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(starts + scale, src + 1) - np.maximum(starts, src), 0.0, None)
    return overlap / scale


def _enlarge_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's two-tap ``INTER_AREA`` weights for enlarging one axis, in its 11-bit
    fixed point: (left index, right index, left weight, right weight)."""
    scale, inv = n_in / n_out, n_out / n_in
    dst = np.arange(n_out)
    left = np.floor(dst * scale).astype(np.int64)
    frac = ((dst + 1) - (left + 1) * inv).astype(np.float32)
    frac = np.where(frac <= 0, np.float32(0), frac - np.floor(frac)).astype(np.float32)
    one = 1 << 11
    w_left = np.rint((np.float32(1) - frac) * np.float32(one)).astype(np.int64)
    w_right = np.rint(frac * np.float32(one)).astype(np.int64)
    past_end = left + 1 >= n_in
    if past_end.any():  # from the first tap past the border on, copy the last pixel
        first = int(np.argmax(past_end))
        w_left[first:], w_right[first:] = one, 0
    left = np.minimum(left, n_in - 1)
    return left, np.minimum(left + 1, n_in - 1), w_left, w_right


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero box weights of :func:`_area_weights` as (n_out, k) source indices
    and float32 weights, in increasing source order (unused taps have weight 0)."""
    weights = _area_weights(n_in, n_out).astype(np.float32)
    used = weights > 0
    first = np.argmax(used, axis=1)
    offsets = first[:, None] + np.arange(used.sum(axis=1).max())[None, :]
    index = np.minimum(offsets, n_in - 1)
    taps = np.take_along_axis(weights, index, axis=1)
    taps[offsets > n_in - 1] = 0
    return index, taps


def _area_shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # accumulate tap by tap in float32, along x then y, in OpenCV's order
    iy, wy = _area_taps(image.shape[0], size[0])
    ix, wx = _area_taps(image.shape[1], size[1])
    pixels = image.astype(np.float32)
    rows = np.zeros((image.shape[0], size[1], image.shape[2]), np.float32)
    for t in range(ix.shape[1]):
        rows += pixels[:, ix[:, t]] * wx[None, :, t, None]
    out = np.zeros((*size, image.shape[2]), np.float32)
    for t in range(iy.shape[1]):
        out += rows[iy[:, t]] * wy[:, t, None, None]
    halving = image.shape[0] == 2 * size[0] and image.shape[1] == 2 * size[1]
    return np.floor(out + 0.5) if halving else np.rint(out)  # 2x2 fast path rounds half up


def _area_enlarge(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x0, x1, ax0, ax1 = _enlarge_taps(image.shape[1], size[1])
    y0, y1, ay0, ay1 = _enlarge_taps(image.shape[0], size[0])
    pixels = image.astype(np.int64)
    rows = pixels[:, x0] * ax0[None, :, None] + pixels[:, x1] * ax1[None, :, None]
    top, bottom = rows[y0] >> 4, rows[y1] >> 4
    b0, b1 = ay0[:, None, None], ay1[:, None, None]
    return (((b0 * top) >> 16) + ((b1 * bottom) >> 16) + 2) >> 2


def area_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, C) uint8 to ``size`` = (h, w) like ``cv2.resize(image, (w, h),
    interpolation=cv2.INTER_AREA)`` (what LiteMedSAM uses); returns uint8.

    Shrinking averages the covered input area with box weights in float32, along x
    then y, rounding half to even (half up for the exact 2x2 case). Enlarging uses
    two-tap linear weights with OpenCV's area-style fractions in 11-bit fixed point.
    Both reproduce OpenCV's arithmetic, so results match it bit for bit.
    """
    if image.shape[0] >= size[0] and image.shape[1] >= size[1]:
        out = _area_shrink(image, size)
    else:
        out = _area_enlarge(image, size)
    return np.clip(out, 0, 255).astype(np.uint8)


def pad_to_square(image: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (h, w, C) at the bottom and right to (size, size, C)."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, size - h), (0, size - w), (0, 0)))


def _as_chw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)


def _scale_xy(coords: np.ndarray, sx: float, sy: float) -> np.ndarray:
    out = np.array(coords, dtype=np.float64, copy=True)
    out[..., 0::2] *= sx
    out[..., 1::2] *= sy
    return out


# ----------------------------------------------------------------------------- transforms


class MedSAMTransform:
    """MedSAM's published inference steps (see module docstring)."""

    name = "medsam"
    image_size = 1024

    def prepare_image(self, image: np.ndarray) -> PreparedImage:
        """(H, W, 3) in [0, 255] -> float32 (3, 1024, 1024) in [0, 1]."""
        size = (self.image_size, self.image_size)
        resized = spline_resize(image, size).astype(np.uint8)
        return PreparedImage(_as_chw(minmax_unit(resized)), image.shape[:2], size)

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(N, 4) XYXY original pixels -> (N, 4) float input-frame pixels."""
        h, w = original_size
        return _scale_xy(boxes, self.image_size / w, self.image_size / h)

    def apply_points(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(..., 2) XY original pixels -> input-frame pixels."""
        return self.apply_boxes(points, original_size)

    def postprocess(self, low_res_logits: torch.Tensor, original_size: tuple[int, int],
                    input_size: tuple[int, int]) -> torch.Tensor:
        """(N, C, 256, 256) logits -> (N, C, H, W) bool masks."""
        probs = torch.sigmoid(low_res_logits.float())
        probs = F.interpolate(probs, size=tuple(original_size), mode="bilinear",
                              align_corners=False)
        return probs > 0.5


class LiteMedSAMTransform:
    """LiteMedSAM's published inference steps (see module docstring)."""

    name = "litemedsam"
    image_size = 256

    def prepare_image(self, image: np.ndarray) -> PreparedImage:
        """(H, W, 3) in [0, 255] -> float32 (3, 256, 256): resized, [0, 1], zero padded."""
        new_size = longest_side_shape(image.shape[0], image.shape[1], self.image_size)
        if image.dtype != np.uint8:
            image = np.rint(image).astype(np.uint8)
        resized = area_resize(image, new_size)
        padded = pad_to_square(minmax_unit(resized), self.image_size)
        return PreparedImage(_as_chw(padded), image.shape[:2], new_size)

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(N, 4) XYXY -> (N, 4) input-frame pixels, truncated to integers as LiteMedSAM does."""
        ratio = self.image_size / max(original_size)
        return np.floor(np.asarray(boxes, dtype=np.float64) * ratio)

    def apply_points(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        """(..., 2) XY -> input-frame pixels (not truncated)."""
        return np.asarray(points, dtype=np.float64) * (self.image_size / max(original_size))

    def postprocess(self, low_res_logits: torch.Tensor, original_size: tuple[int, int],
                    input_size: tuple[int, int]) -> torch.Tensor:
        logits = low_res_logits.float()[..., : input_size[0], : input_size[1]]
        logits = F.interpolate(logits, size=tuple(original_size), mode="bilinear",
                               align_corners=False)
        return torch.sigmoid(logits) > 0.5


class SAMTransform:
    """Meta's SAM preprocessing, for the original SAM weights (the paper's baseline)."""

    name = "sam"
    image_size = 1024
    pixel_mean = np.array([123.675, 116.28, 103.53])
    pixel_std = np.array([58.395, 57.12, 57.375])
    mask_threshold = 0.0

    def prepare_image(self, image: np.ndarray) -> PreparedImage:
        """(H, W, 3) in [0, 255] -> float32 (3, 1024, 1024), normalised and zero padded."""
        from PIL import Image

        new_h, new_w = longest_side_shape(image.shape[0], image.shape[1], self.image_size)
        if image.dtype != np.uint8:
            image = np.rint(image).astype(np.uint8)
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
        normalised = (resized.astype(np.float32) - self.pixel_mean.astype(np.float32)) \
            / self.pixel_std.astype(np.float32)
        padded = pad_to_square(normalised, self.image_size)
        return PreparedImage(_as_chw(padded), image.shape[:2], (new_h, new_w))

    def apply_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        h, w = original_size
        new_h, new_w = longest_side_shape(h, w, self.image_size)
        return _scale_xy(boxes, new_w / w, new_h / h)

    def apply_points(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        return self.apply_boxes(points, original_size)

    def postprocess(self, low_res_logits: torch.Tensor, original_size: tuple[int, int],
                    input_size: tuple[int, int]) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        masks = F.interpolate(low_res_logits.float(), size=size, mode="bilinear",
                              align_corners=False)
        masks = masks[..., : input_size[0], : input_size[1]]
        masks = F.interpolate(masks, size=tuple(original_size), mode="bilinear",
                              align_corners=False)
        return masks > self.mask_threshold


TRANSFORMS: dict[str, type[Transform]] = {
    "medsam": MedSAMTransform,
    "litemedsam": LiteMedSAMTransform,
    "sam": SAMTransform,
}


def get_transform(name: str) -> Transform:
    """A new transform called ``name`` (a key of :data:`TRANSFORMS`)."""
    try:
        return TRANSFORMS[name]()
    except KeyError:
        raise ValueError(f"unknown transform {name!r}; choose one of {sorted(TRANSFORMS)}") \
            from None


#: side of SAM's low-resolution logits (and of its dense mask prompt)
LOW_RES = 256
#: the logit a mask given as SAM's dense prompt (``mask_input``) has inside (and minus it
#: outside): interactive models are trained with binary masks at this value
#: (:mod:`medsam.training.interactive`) and given them the same way
MASK_PROMPT_LOGIT = 6.0


def low_res_target(mask: np.ndarray, input_size: tuple[int, int], image_size: int) -> np.ndarray:
    """(H, W) bool -> (256, 256) float32 mask aligned with the decoder's logits: resized
    to ``input_size * 256 / image_size`` (area-weighted, threshold 0.5) and zero padded
    at the bottom/right like the image."""
    scale = LOW_RES / image_size
    h, w = max(1, round(input_size[0] * scale)), max(1, round(input_size[1] * scale))
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    resized = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                            antialias=True)[0, 0]
    out = torch.zeros(LOW_RES, LOW_RES)
    out[:h, :w] = (resized > 0.5).float()
    return out.numpy()


def mask_prompt(mask: np.ndarray, input_size: tuple[int, int], image_size: int) -> np.ndarray:
    """(H, W) bool -> (256, 256) float32 dense prompt: :func:`low_res_target` as
    +/- :data:`MASK_PROMPT_LOGIT`."""
    low = low_res_target(mask, input_size, image_size)
    return np.where(low > 0.5, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT).astype(np.float32)
