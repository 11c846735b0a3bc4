"""Loading checkpoints into our models.

A checkpoint is a PyTorch file holding a state dict in SAM's key layout
(``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``): Meta's
``sam_vit_*.pth``, ``medsam_vit_b.pth``, ``lite_medsam.pth``, or a training
checkpoint ``{"model": state_dict, "optimizer": ..., "epoch": ...}``, possibly
saved from a ``DistributedDataParallel`` (``module.``) or ``torch.compile``
(``_orig_mod.``) wrapper. Files are read with ``torch.load(weights_only=True)``:
no code in a checkpoint is ever run.

Our own checkpoints (training's ``best.pth`` / ``last.pth``) record how they were
made: variant, transform, input size, training data. The record is kept where torch
keeps per-module versions, ``state_dict._metadata[""]["medsam"]``, so the keys stay
SAM's layout and any SAM loader still reads the file (:func:`with_metadata`,
:func:`read_checkpoint`).

Which preprocessing a loaded model needs (``model.preprocessing``, and in words
``model.preprocessing_source``) is, in order: the ``transform`` asked for; the one
recorded in the checkpoint; the registry entry of named weights; the registry entry
whose published file this is (by size and checksum, never by file name); else None,
the variant's default.

Every problem a user can cause (missing file, not a torch file, truncated file,
no model weights, keys or shapes that do not fit the model) raises
:class:`~medsam.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from .errors import CheckpointError, InputError, first_line
from .modeling.build import MODEL_CONFIGS, MODEL_REGISTRY, ViTConfig, build_model
from .modeling.sam import Sam
from .modeling.unet import UNET_VARIANT, BoxUNet, UNetConfig, build_unet

StateDict = Dict[str, torch.Tensor]

COMPONENTS = ("image_encoder.", "prompt_encoder.", "mask_decoder.")
# wrappers whose prefix is stripped when every key carries it
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")
# keys under which training scripts nest the model's state dict
NESTING_KEYS = ("model", "state_dict", "model_state_dict")
# pixel normalisation buffers some SAM versions save; our models hold none
IGNORED_KEYS = ("pixel_mean", "pixel_std")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl", ".tar")
_LISTED = 5  # how many keys an error message lists per kind of problem
#: the key of our record in ``state_dict._metadata[""]``
METADATA_KEY = "medsam"


def read_checkpoint(path: Union[str, os.PathLike]) -> Tuple[StateDict, Dict[str, Any]]:
    """Read the model's state dict and our record of it from the checkpoint ``path``.

    Accepts a plain state dict, ``{"model": ...}`` / ``{"state_dict": ...}``
    training checkpoints and ``module.`` / ``_orig_mod.`` / ``model.``
    prefixes; tensors are loaded onto the CPU. Returns a new dict whose keys
    start with ``image_encoder.``, ``prompt_encoder.`` or ``mask_decoder.``
    (pixel mean/std buffers dropped), or ``net.`` for a U-Net that records itself
    as one, and the record saved by :func:`with_metadata` (``{}`` for other files).
    Raises :class:`CheckpointError`.
    """
    path = Path(path)
    loaded = _torch_load(path)
    state, metadata = _unwrap(loaded, path)
    if metadata.get("variant") == UNET_VARIANT and state:
        return state, metadata
    if not any(key.startswith(COMPONENTS) for key in state):
        raise CheckpointError(
            f"{path}: no model weights found (expected keys starting with "
            f"{', '.join(c + '*' for c in COMPONENTS)}); it holds {_first(list(state))}")
    return state, metadata


def load_state_dict(path: Union[str, os.PathLike]) -> StateDict:
    """The model's state dict from the checkpoint ``path`` (see :func:`read_checkpoint`)."""
    return read_checkpoint(path)[0]


def with_metadata(state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
                  ) -> "OrderedDict[str, torch.Tensor]":
    """``state`` carrying ``metadata`` (plain values: str, int, float, lists, dicts) in
    ``_metadata[""]["medsam"]``; saved with ``torch.save`` it keeps SAM's key layout."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict(state)
    out._metadata = OrderedDict({"": {METADATA_KEY: dict(metadata)}})  # type: ignore[attr-defined]
    return out


def infer_variant(state_dict: Mapping, source: str = "state dict") -> str:
    """The ``MODEL_REGISTRY`` variant whose keys and shapes ``state_dict`` has.

    TinyViT keys (``image_encoder.layers.*``) mean ``"lite"``; otherwise the
    ViT width (patch-embedding channels) and number of blocks pick ``vit_b`` /
    ``vit_l`` / ``vit_h``. Raises :class:`CheckpointError` (message starting
    with ``source``) when no variant fits.
    """
    keys = list(state_dict)
    if any(key.startswith("image_encoder.layers.") for key in keys):
        return "lite"
    proj = state_dict.get("image_encoder.patch_embed.proj.weight")
    if proj is None:
        raise CheckpointError(
            f"{source}: cannot tell the model variant: no image-encoder patch embedding "
            f"(image_encoder.patch_embed.*); pass the variant explicitly")
    width = int(proj.shape[0])
    blocks = {key.split(".")[2] for key in keys if key.startswith("image_encoder.blocks.")}
    for name, config in MODEL_CONFIGS.items():
        enc = config.encoder
        if isinstance(enc, ViTConfig) and enc.embed_dim == width and enc.depth == len(blocks):
            return name
    raise CheckpointError(
        f"{source}: no known model variant has a ViT of width {width} with {len(blocks)} "
        f"blocks (known: {_vit_summary()})")


def load_model(checkpoint: Union[str, os.PathLike, None] = None, variant: Optional[str] = None,
               device: Union[str, torch.device] = "auto", progress: bool = True,
               transform: Optional[str] = None) -> Union[Sam, BoxUNet]:
    """Build the model and load ``checkpoint`` into it with strict checking.

    Args:
        checkpoint: a checkpoint file, or the name of registered weights
            (``medsam.weights``) when the string is not an existing file and
            does not look like a path; None: the default weights
            (``medsam.weights.DEFAULT_WEIGHTS``, the official LiteMedSAM). Named
            weights that are not cached yet are fetched first (once per machine).
        variant: a ``MODEL_REGISTRY`` name or ``"unet"`` (a
            :class:`~medsam.modeling.unet.BoxUNet` trained by ``medsam train``); None:
            recorded in the checkpoint, else inferred from the keys.
        device: where to put the model ("auto", the default: the best available, see
            :func:`medsam.devices.resolve_device`; "cpu", "cuda", "cuda:1", "mps").
        progress: show what is fetched on first use (stderr).
        transform: the preprocessing to use (a key of
            :data:`medsam.transforms.TRANSFORMS`), overriding what the weights record;
            see the module docstring for how it is chosen otherwise.

    Returns:
        the :class:`~medsam.modeling.sam.Sam` (or ``BoxUNet``), in eval mode, float32.

    Raises:
        CheckpointError: the file is missing or unreadable, or its keys or
            shapes do not match the variant (the message lists the first
            missing / unexpected keys and shape mismatches).
        InputError: unknown variant or unusable device.
    """
    if checkpoint is None:
        from .weights import DEFAULT_WEIGHTS

        checkpoint = DEFAULT_WEIGHTS
    path = _resolve(checkpoint, progress)
    state, metadata = read_checkpoint(path)
    recorded = metadata.get("variant")
    if variant == UNET_VARIANT or (variant is None and recorded == UNET_VARIANT):
        return _load_unet(path, state, metadata, device, transform)
    if variant is None and isinstance(recorded, str) and recorded in MODEL_REGISTRY:
        variant = recorded
        how = "recorded in the checkpoint"
    elif variant is None:
        variant = infer_variant(state, source=str(path))
        how = "inferred from its keys"
    else:
        if variant not in MODEL_REGISTRY:
            raise InputError(f"unknown model variant {variant!r}; choose one of "
                             f"{', '.join([*MODEL_REGISTRY, UNET_VARIANT])}")
        how = "as requested"
    target = _device(device)
    with torch.random.fork_rng(devices=[]), torch.device(_build_device(variant)):
        model = build_model(variant)  # its random weights are replaced; the caller's RNG is not used
    expected = model.state_dict()
    problems = _mismatches(expected, state)
    if problems:
        hint = ""
        if how == "as requested":
            try:
                guess = infer_variant(state)
            except CheckpointError:
                guess = None
            if guess is not None and guess != variant:
                hint = f"; its keys look like variant {guess!r}"
        raise CheckpointError(f"{path}: does not fit model variant {variant!r} ({how}): "
                              f"{problems}{hint}")
    state = {key: value.to(expected[key].dtype).contiguous() for key, value in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    still_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()]
                  if t.is_meta]
    if still_meta:  # a module with a non-persistent buffer would end here: a bug of ours
        raise RuntimeError(f"tensors not filled from the checkpoint: {still_meta[:_LISTED]}")
    try:
        model = model.to(target)
    except (RuntimeError, AssertionError) as error:
        raise InputError(f"cannot use device {str(device)!r}: {first_line(error)}") from None
    model.preprocessing, model.preprocessing_source = _preprocessing(
        checkpoint, path, variant, metadata, transform)
    if model.preprocessing is not None:
        _check_transform(model.preprocessing, model.image_size, path)
    model.metadata = metadata
    return model.eval()


def _load_unet(path: Path, state: StateDict, metadata: Dict[str, Any],
               device: Union[str, torch.device], transform: Optional[str]) -> BoxUNet:
    """A :class:`BoxUNet` built as its checkpoint records, with the file's weights."""
    config = UNetConfig.from_record(metadata.get(UNET_VARIANT))
    with torch.random.fork_rng(devices=[]):
        model = build_unet(config)
    problems = _mismatches(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"{path}: does not fit model variant {UNET_VARIANT!r}: {problems}")
    model.load_state_dict(state, strict=True)
    try:
        model = model.to(_device(device))
    except (RuntimeError, AssertionError) as error:
        raise InputError(f"cannot use device {str(device)!r}: {first_line(error)}") from None
    if transform is not None:
        model.preprocessing, model.preprocessing_source = transform, "as requested"
    elif isinstance(metadata.get("transform"), str) and metadata["transform"]:
        model.preprocessing = metadata["transform"]
        model.preprocessing_source = "recorded in the checkpoint"
    if model.preprocessing is not None:
        _check_transform(model.preprocessing, model.image_size, path)
    model.metadata = metadata
    return model.eval()


#: encoders above this many parameters (ViT-L, ViT-H) are built on the meta device
_META_BUILD_PARAMETERS = 200_000_000


def _build_device(variant: str) -> str:
    """Where to build the model whose weights are about to be replaced by the file's.

    Random initialisation is wasted work: on the meta device it costs nothing per
    parameter, but the first ``normal_`` there imports torch's Python decompositions
    (about 1 s), more than initialising LiteMedSAM (0.06 s) or ViT-B (0.46 s) for real.
    Large encoders are built on the meta device, which also avoids holding two copies.
    """
    encoder = MODEL_CONFIGS[variant].encoder
    if isinstance(encoder, ViTConfig):
        approx = 12 * encoder.depth * encoder.embed_dim ** 2  # attention + MLP weights
        if approx > _META_BUILD_PARAMETERS:
            return "meta"
    return "cpu"


def _preprocessing(checkpoint: Union[str, os.PathLike], path: Path, variant: str,
                   metadata: Mapping[str, Any], transform: Optional[str]
                   ) -> Tuple[Optional[str], str]:
    """(transform name or None for the variant's default, where that choice came from)."""
    from .transforms import transform_for_variant
    from .weights import WEIGHTS, identify_file

    if transform is not None:
        return transform, "as requested"
    if isinstance(metadata.get("transform"), str) and metadata["transform"]:
        return metadata["transform"], "recorded in the checkpoint"
    entry = WEIGHTS.get(checkpoint) if isinstance(checkpoint, str) else None
    if entry is not None and entry.variant == variant:
        return entry.transform, f"registered weights {entry.name}"
    entry = identify_file(path, variant, skip_transform=transform_for_variant(variant))
    if entry is not None:
        return entry.transform, f"the published {entry.name} file"
    return None, "the variant's default"


def _check_transform(name: str, image_size: int, path: Path) -> None:
    from .transforms import TRANSFORMS

    if name not in TRANSFORMS:
        raise InputError(f"unknown transform {name!r}; choose one of {', '.join(sorted(TRANSFORMS))}")
    size = TRANSFORMS[name].image_size
    if size != image_size:
        raise InputError(f"{path}: transform {name!r} makes {size}-pixel inputs but the model "
                         f"takes {image_size}")


def _resolve(checkpoint: Union[str, os.PathLike], progress: bool = True) -> Path:
    """File path of ``checkpoint``; registered-weights names go through
    :func:`medsam.weights.get_weights_path`, which fetches them on first use."""
    if isinstance(checkpoint, str) and not Path(checkpoint).exists() \
            and not _looks_like_path(checkpoint):
        from .weights import get_weights_path

        return Path(get_weights_path(checkpoint, download=True, progress=progress))
    return Path(checkpoint)


def _looks_like_path(text: str) -> bool:
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return (any(sep in text for sep in seps) or text.startswith(("~", "."))
            or text.lower().endswith(CHECKPOINT_SUFFIXES))


def _torch_load(path: Path) -> object:
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({error.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: is empty, not a PyTorch checkpoint")
    is_zip = head.startswith(b"PK\x03\x04")
    is_pickle = head[:1] == b"\x80"
    if not (is_zip or is_pickle):
        raise CheckpointError(f"{path}: is not a PyTorch checkpoint (unrecognised file format)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. odd pickle protocols in garbage files
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: {explain_load_failure(str(error))}") from None


def explain_load_failure(message: str) -> str:
    """A one-line explanation of a failed ``torch.load(weights_only=True)``."""
    found = (re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
             or re.search(r"unsupported GLOBAL ([\w.]+)", message))
    if found:
        return (f"holds a Python object ({found.group(1)}) besides tensors, which is not loaded "
                f"for safety (torch.load weights_only=True)")
    detail = message
    if "WeightsUnpickler error:" in message:
        detail = message.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    reason = lines[0].split(". ")[0].rstrip(".") if lines else "unknown error"
    return f"cannot be read as a PyTorch checkpoint; the file is truncated or damaged ({reason})"


def _unwrap(loaded: object, path: Path) -> Tuple[StateDict, Dict[str, Any]]:
    """The model state dict inside ``loaded``, with wrapper prefixes removed, and the
    record :func:`with_metadata` put in it (``{}`` when none)."""
    state = loaded
    for _ in range(2):
        if isinstance(state, Mapping) and not any(str(k).startswith(COMPONENTS) for k in state):
            nested = next((state[k] for k in NESTING_KEYS
                           if k in state and isinstance(state[k], Mapping)), None)
            if nested is not None:
                state = nested
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    versions = getattr(state, "_metadata", None)
    root = versions.get("", {}) if isinstance(versions, Mapping) else {}
    metadata = root.get(METADATA_KEY, {}) if isinstance(root, Mapping) else {}
    state = {str(key): value for key, value in state.items()}
    state = _strip_prefixes(state)
    for key in IGNORED_KEYS:
        state.pop(key, None)
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad and any(key.startswith(COMPONENTS) for key in state):
        raise CheckpointError(f"{path}: is not a state dict: {_first(bad)} are not tensors")
    return state, dict(metadata) if isinstance(metadata, Mapping) else {}


def _strip_prefixes(state: StateDict) -> StateDict:
    changed = True
    while changed and state:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(key.startswith(prefix) for key in state):
                state = {key[len(prefix):]: value for key, value in state.items()}
                changed = True
    return state


def _mismatches(expected: Mapping, state: Mapping) -> str:
    """'' when ``state`` has exactly the keys and shapes of ``expected``, else a
    description of the first missing / unexpected keys and shape mismatches."""
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [f"{key} {tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} "
              f"in the model" for key in expected
              if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_first(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_first(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {_first(shapes)}")
    return "; ".join(parts)


def _first(items: List[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    if len(items) > _LISTED:
        shown += f", ... ({len(items) - _LISTED} more)"
    return shown or "nothing"




def _device(device: Union[str, torch.device, None]) -> torch.device:
    from .devices import resolve_device

    return resolve_device(device)


def _vit_summary() -> str:
    return ", ".join(f"{name} (width {c.encoder.embed_dim}, {c.encoder.depth} blocks)"
                     for name, c in MODEL_CONFIGS.items() if isinstance(c.encoder, ViTConfig))


def save_torch_file(obj: Any, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """``torch.save`` of plain values (tensors, numbers, strings, dicts) to ``path``,
    atomically. The file is serialised in memory and written by Python: torch's own
    writer turns a full disk into an unclear error, Python's into one that names it.

    Raises:
        InputError: ``path`` exists and ``overwrite`` is false.
        OutputError: the file could not be written (a full disk).
    """
    import io

    from .fileutil import atomic_path

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
    return Path(path)
