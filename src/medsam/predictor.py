"""Box- and point-prompted 2D segmentation with a cached image embedding.

    predictor = MedSAMPredictor(medsam.load_model("medsam_vit_b"))
    predictor.set_image(image, modality="xray")   # (H, W) or (H, W, 3); raw values normalised
    masks, scores, logits = predictor.predict(boxes=[[x0, y0, x1, y1], ...])

The transform (resizing, normalisation, prompt scaling, mask post-processing) is
chosen from the model: LiteMedSAM -> ``"litemedsam"``, ViTs -> ``"medsam"``; pass
``transform="sam"`` for Meta's SAM weights (see :mod:`medsam.transforms`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from numpy.typing import ArrayLike

from .devices import resolve_device
from .errors import InputError
from .fileutil import atomic_path, check_writable_output
from .intensity import prepare_intensities, to_three_channels
from .modeling.sam import decode_prompts
from .precision import precision_context, resolve_precision
from .prompt_geometry import validate_boxes, validate_points
from .transforms import Transform, get_transform

EMBEDDING_FORMAT = "medsam-embedding-1"
#: prompts per mask-decoder call on a CPU (``benchmarks/bench_model.py``: per-prompt time
#: is lowest at 2-4; at 16 the intermediates no longer fit the cache, 1.5x slower per prompt)
CPU_DECODE_BATCH = 2


def _size2(values: Iterable) -> tuple[int, int]:
    """(height, width) as two ints; ValueError unless there are exactly two values."""
    height, width = (int(v) for v in values)
    return height, width


def _check_image(image: ArrayLike) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == bool or not np.issubdtype(image.dtype, np.number) \
            or np.issubdtype(image.dtype, np.complexfloating):
        raise InputError(f"image must hold real numbers, got dtype {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"expected a 2D image of shape (H, W) or (H, W, 3), got shape "
                         f"{image.shape}")
    if image.size == 0:
        raise InputError(f"image is empty (shape {image.shape})")
    finite = np.isfinite(image)
    if not finite.any():
        raise InputError("image is all NaN (or infinite)")
    if not finite.all():
        raise InputError(f"image contains {int((~finite).sum())} NaN or infinite values")
    low, high = image.min(), image.max()
    if low < 0 or high > 255:
        raise InputError(
            f"image values span [{low}, {high}] but the model expects [0, 255]; give the "
            f"image's modality (e.g. set_image(image, modality='ct')) to normalise it")
    return to_three_channels(image)


class MedSAMPredictor:
    """Segments one image at a time from box and/or point prompts.

    ``model``: a ``Sam`` (``image_encoder``, ``prompt_encoder``, ``mask_decoder``).
    ``transform``: a name in :data:`medsam.transforms.TRANSFORMS`, a transform
    object, or None for the one the model's weights were trained with
    (``model.info.transform``, set by :func:`medsam.load_model` and
    :func:`medsam.build_model`, e.g. ``sam`` for Meta's SAM files); a model built
    elsewhere (Meta's ``Sam``) has no ``info`` and needs its transform given. ``device``: ``cpu``,
    ``cuda[:N]``, ``mps`` or ``auto``; None keeps the model where it is. ``precision``:
    ``"exact"`` (float32), ``"bf16"`` or ``"auto"`` (the fastest mode that keeps the
    accuracy guard, today ``"exact"``; see :mod:`medsam.precision`); :attr:`precision`
    holds the one in use.
    """

    def __init__(self, model: torch.nn.Module, transform: str | Transform | None = None,
                 device: str | torch.device | None = None, precision: str = "auto") -> None:
        if device is not None:
            model = model.to(resolve_device(device))
        self.model: Any = model.eval()  # ours or Meta's Sam: image_encoder, prompt_encoder, ...
        self.device = next(model.parameters()).device
        self.precision = resolve_precision(precision, self.device)
        info = getattr(model, "info", None)
        if info is None:  # a Sam built elsewhere: nothing says how its weights were trained
            if transform is None:
                raise InputError("the model was not built by medsam (it has no `info`), so its "
                                 "preprocessing is unknown: give its transform (e.g. transform='sam')")
            self.variant, size = type(model).__name__, int(getattr(self.model.image_encoder, "img_size"))
        else:
            self.variant, size = info.variant, info.image_size
            transform = transform or info.transform
        self.transform: Transform = get_transform(transform) if isinstance(transform, str) else transform
        if self.transform.image_size != size:
            raise InputError(f"transform {self.transform.name!r} makes {self.transform.image_size}"
                             f"-pixel inputs but the model takes {size}")
        self.reset_image()

    @classmethod
    def from_weights(cls, name: str | None = None, device: str | torch.device | None = "auto",
                     download: bool = True, progress: bool = True,
                     precision: str = "auto") -> "MedSAMPredictor":
        """A predictor for the named weights (``medsam.weights.WEIGHTS``; None: the default,
        LiteMedSAM), with the transform those weights were trained with (``sam`` for
        Meta's SAM files). ``download``: fetch the file when it is not cached yet
        (``progress``: say so on stderr)."""
        from .loading import load_model
        from .weights import DEFAULT_WEIGHTS, get_entry, get_weights_path

        entry = get_entry(name or DEFAULT_WEIGHTS)
        get_weights_path(entry.name, download=download, progress=progress)  # cached, or fetched
        # by name: the registry gives the transform, the file need not be identified again
        model = load_model(entry.name, variant=entry.variant, device=resolve_device(device))
        return cls(model, precision=precision)

    # ------------------------------------------------------------------ image embedding

    def reset_image(self) -> None:
        """Forget the current image and its embedding."""
        self._embedding: torch.Tensor | None = None
        self.original_size: tuple[int, int] | None = None
        self.input_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    def set_image(self, image: np.ndarray, modality: str | None = None, window: str | None = None,
                  level: float | None = None, width: float | None = None) -> None:
        """Compute and cache the embedding of ``image``: (H, W) grey or (H, W, 3) RGB.

        With a ``modality`` (``ct``, ``mr``, ``xray``, ...; CT ``window`` or
        ``level``/``width``), raw values are first normalised as ``medsam segment``
        does (:func:`medsam.intensity.prepare_intensities`), so the masks are the
        command's. Without one, values must already be in [0, 255] (uint8 or any real
        dtype) and are used as they are."""
        if modality is not None or window is not None or level is not None or width is not None:
            image = prepare_intensities(np.asarray(image), None, modality, window, level, width)
        image = _check_image(image)
        prepared = self.transform.prepare_image(image)
        with torch.inference_mode(), precision_context(self.precision, self.device):
            x = torch.from_numpy(prepared.tensor)[None].to(self.device)
            embedding = self.model.image_encoder(x).float()
        self._embedding = embedding
        self.original_size = _size2(prepared.original_size)
        self.input_size = _size2(prepared.input_size)

    def get_image_embedding(self) -> torch.Tensor:
        """The cached embedding, (1, 256, 64, 64) float32 on the model's device."""
        return self._require_image()[0]

    def _require_image(self) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
        """(embedding, original size, input size) of the current image."""
        if self._embedding is None or self.original_size is None or self.input_size is None:
            raise InputError("no image set: call set_image(image) or load_embedding(path) first")
        return self._embedding, self.original_size, self.input_size

    # ------------------------------------------------------------------ prediction

    def predict(self, boxes: ArrayLike | None = None, points: ArrayLike | None = None,
                point_labels: ArrayLike | None = None,
                multimask_output: bool = False, batch_size: int | None = None,
                mask_input: ArrayLike | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Segment N objects of the current image in one call.

        ``boxes``: (4,) or (N, 4) XYXY in original pixels. ``points``: (K, 2) or
        (N, K, 2) XY in original pixels, with ``point_labels`` (K,) or (N, K), 1 for
        foreground, 0 for background. With both, N must match (or points have N=1,
        shared by every box). Prompts are decoded ``batch_size`` at a time (None:
        :data:`CPU_DECODE_BATCH` on a CPU, where larger batches fall out of the cache and
        are slower per prompt, 64 elsewhere). ``mask_input``: SAM's dense prompt, low-res
        logits (N, 1, 256, 256) as returned by an earlier call (one per prompt).

        Returns ``masks`` bool (N, H, W) (``(N, 3, H, W)`` with ``multimask_output``),
        ``scores`` float32 (N,) or (N, 3) (predicted IoU), and ``low_res_logits``
        float32 (N, 1 or 3, 256, 256).
        """
        embedding, size, input_size = self._require_image()
        if boxes is None and points is None:
            raise InputError("give boxes and/or points to predict from")
        if batch_size is None:
            batch_size = CPU_DECODE_BATCH if self.device.type == "cpu" else 64
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        box_arr = None if boxes is None else validate_boxes(boxes, size)
        pts = lab = None
        if points is not None:
            pts, lab = validate_points(points, point_labels, size)
        n = len(box_arr) if box_arr is not None else len(pts) if pts is not None else 0
        if pts is not None and len(pts) != n:
            if len(pts) != 1:
                raise InputError(f"{n} boxes but {len(pts)} point prompts; give one point "
                                 f"prompt per box, or one for all")
            pts, lab = np.repeat(pts, n, axis=0), np.repeat(np.asarray(lab), n, axis=0)
        dense = None
        if mask_input is not None:
            dense = np.asarray(mask_input, dtype=np.float32)
            if dense.shape != (n, 1, 256, 256):
                raise InputError(f"mask_input must have shape ({n}, 1, 256, 256), got {dense.shape}")
        if box_arr is not None:
            box_arr = self.transform.apply_boxes(box_arr, size)
        if pts is not None:
            pts = self.transform.apply_points(pts, size)

        channels = 3 if multimask_output else 1
        masks = np.zeros((n, channels, size[0], size[1]), dtype=bool)
        scores = np.zeros((n, channels), dtype=np.float32)
        logits = np.zeros((n, channels, 256, 256), dtype=np.float32)
        for start in range(0, n, batch_size):
            part = slice(start, min(start + batch_size, n))
            low, iou = self._decode(
                embedding,
                None if box_arr is None else box_arr[part],
                None if pts is None or lab is None else (pts[part], lab[part]),
                multimask_output, None if dense is None else dense[part])
            masks[part] = self.transform.postprocess(low, size,
                                                     input_size).cpu().numpy()
            scores[part] = iou.float().cpu().numpy()
            logits[part] = low.float().cpu().numpy()
        if not multimask_output:
            masks = masks[:, 0]
            scores = scores[:, 0]
        return masks, scores, logits

    def _decode(self, embedding: torch.Tensor, boxes: np.ndarray | None,
                points: tuple[np.ndarray, np.ndarray] | None, multimask_output: bool,
                mask_input: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt encoder + mask decoder for one batch of B prompts ->
        (low-res logits (B, C, 256, 256), IoU predictions (B, C))."""
        dev = self.device
        with torch.inference_mode(), precision_context(self.precision, dev):
            box_t = None if boxes is None else torch.as_tensor(boxes, dtype=torch.float32,
                                                               device=dev)
            point_t = None
            if points is not None:
                point_t = (torch.as_tensor(points[0], dtype=torch.float32, device=dev),
                           torch.as_tensor(points[1], dtype=torch.int64, device=dev))
            mask_t = None if mask_input is None else torch.as_tensor(mask_input, device=dev)
            return decode_prompts(self.model, embedding, boxes=box_t, points=point_t, masks=mask_t,
                                  multimask_output=multimask_output)

    # ------------------------------------------------------------------ embedding files

    def _metadata(self) -> dict:
        return {"format": EMBEDDING_FORMAT, "transform": self.transform.name,
                "variant": self.variant, "image_size": self.transform.image_size}

    def save_embedding(self, path: str | os.PathLike, overwrite: bool = False, tag: str | None = None) -> Path:
        """Write the current embedding with its original size, input size, transform
        name and model variant to ``path`` (``.npz``, or ``.pt`` for torch), atomically.
        ``tag`` (a digest of what the embedding is of) is stored too, for
        :meth:`load_embedding` to check."""
        embedding, size, input_size = self._require_image()
        path = check_writable_output(path, overwrite)
        meta = self._metadata()
        if tag is not None:
            meta["tag"] = tag
        if path.suffix == ".pt":
            from .checkpoint import save_torch_file

            return save_torch_file({**meta, "embedding": embedding.detach().cpu(),
                                    "original_size": list(size), "input_size": list(input_size)}, path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            arrays = {"embedding": embedding.detach().cpu().numpy(),
                      "original_size": np.array(size), "input_size": np.array(input_size),
                      **{k: np.array(v) for k, v in meta.items()}}
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds badly
        return path

    def load_embedding(self, path: str | os.PathLike, tag: str | None = None) -> None:
        """Use an embedding written by :meth:`save_embedding` instead of calling
        :meth:`set_image`. Raises :class:`InputError` when the file is unreadable or was
        made with another transform, model variant or input size; with ``tag``, also when
        it is not a plain file (a symbolic link is not followed) or does not hold that tag
        (an embedding of something else, under this name)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: embedding file not found")
        try:
            if path.suffix == ".pt":
                data = torch.load(path, map_location="cpu", weights_only=True)
                data["embedding"] = data["embedding"].numpy()
            else:
                flags = os.O_RDONLY | (getattr(os, "O_NOFOLLOW", 0) if tag is not None else 0)
                with os.fdopen(os.open(path, flags), "rb") as fh, np.load(fh, allow_pickle=False) as npz:
                    data = {k: npz[k] for k in npz.files}
                    data = {k: (v.item() if v.ndim == 0 else v) for k, v in data.items()}
            fmt, embedding = data["format"], np.asarray(data["embedding"], dtype=np.float32)
            original = _size2(data["original_size"])
            input_size = _size2(data["input_size"])
            meta = {k: data[k] for k in ("transform", "variant", "image_size")}
        except Exception as exc:  # any unreadable or incomplete file
            raise InputError(f"{path}: not a medsam embedding file ({exc})") from None
        if fmt != EMBEDDING_FORMAT:
            raise InputError(f"{path}: unknown embedding format {fmt!r}")
        if tag is not None and data.get("tag") != tag:
            raise InputError(f"{path}: the embedding of something else (its tag does not match its name)")
        expected = self._metadata()
        for key, value in meta.items():
            if value != expected[key]:
                raise InputError(f"{path}: embedding was made with {key} {value!r} but this "
                                 f"predictor uses {expected[key]!r}")
        if embedding.ndim != 4 or embedding.shape[0] != 1:
            raise InputError(f"{path}: embedding has shape {embedding.shape}, expected "
                             f"(1, C, h, w)")
        self._embedding = torch.from_numpy(embedding).to(self.device)
        self.original_size, self.input_size = original, input_size
