"""Assembling a model from a checkpoint: :func:`load_model`.

The file is read by :func:`medsam.checkpoint.read_checkpoint`; which kind of model it
holds (:mod:`medsam.modeling.registry`) is, in order: the variant asked for; the one
the checkpoint records; else inferred from the keys and shapes of a SAM state dict.
The model is built as its kind says (from the recorded architecture where it has
one), and the file's weights must fit it exactly.

Which preprocessing a loaded model needs (``model.info.transform``, and in words
``model.info.transform_source``) is chosen here, once, in order: the ``transform``
asked for; the one recorded in the checkpoint; the registry entry of named weights;
the registry entry whose published file this is (by size and checksum, never by file
name); else the kind's default. Code that uses a loaded model reads ``model.info``
(:class:`~medsam.modeling.info.ModelInfo`) and chooses nothing itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import torch

from .checkpoint import CHECKPOINT_SUFFIXES, StateDict, first_items, read_checkpoint
from .errors import CheckpointError, InputError, first_line
from .modeling.build import MODEL_CONFIGS, ViTConfig
from .modeling.registry import MODEL_REGISTRY, Model, ModelKind, model_kind

#: the record of a file that holds some components of a model, trained over named base
#: weights (:func:`medsam.training.checkpointing.save_parts`)
PARTS_FORMAT = "medsam-parts-1"

#: encoders above this many parameters (ViT-L, ViT-H) are built on the meta device
_META_BUILD_PARAMETERS = 200_000_000


def infer_variant(state_dict: Mapping, source: str = "state dict") -> str:
    """The SAM variant of ``MODEL_REGISTRY`` whose keys and shapes ``state_dict`` has.

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
               transform: Optional[str] = None) -> Model:
    """Build the model and load ``checkpoint`` into it with strict checking.

    Args:
        checkpoint: a checkpoint file, or the name of registered weights
            (``medsam.weights``) when the string is not an existing file and
            does not look like a path; None: the default weights
            (``medsam.weights.DEFAULT_WEIGHTS``, the official LiteMedSAM). Named
            weights that are not cached yet are fetched first (once per machine).
        variant: a ``MODEL_REGISTRY`` name (``"unet"``: a
            :class:`~medsam.modeling.unet.BoxUNet` trained by ``medsam train``); None:
            recorded in the checkpoint, else inferred from the keys.
        device: where to put the model ("auto", the default: the best available, see
            :func:`medsam.devices.resolve_device`; "cpu", "cuda", "cuda:1", "mps").
        progress: show what is fetched on first use (stderr).
        transform: the preprocessing to use (a key of
            :data:`medsam.transforms.TRANSFORMS`), overriding what the weights record;
            see the module docstring for how it is chosen otherwise.

    Returns:
        the :class:`~medsam.modeling.sam.Sam` (or ``BoxUNet``), in eval mode, float32,
        with its ``info`` (:class:`~medsam.modeling.info.ModelInfo`: the transform and where
        that choice came from, whether it was trained for interaction, the weights, the
        checkpoint's record) set.

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
    if metadata.get("format") == PARTS_FORMAT:
        state, metadata = _over_base(state, metadata, path, progress)
    kind, how = _choose_kind(variant, metadata, state, path)
    model = _assemble(kind, how, state, metadata, path)
    try:
        model = model.to(_device(device))
    except (RuntimeError, AssertionError) as error:
        raise InputError(f"cannot use device {str(device)!r}: {first_line(error)}") from None
    chosen, source = _preprocessing(checkpoint, path, kind, metadata, transform)
    _check_transform(chosen, model.image_size, path)
    from .weights import WEIGHTS

    entry = WEIGHTS.get(checkpoint) if isinstance(checkpoint, str) else None
    model.info = replace(model.info, transform=chosen, transform_source=source,
                         interactive=metadata.get("interactive") is True, weights=str(checkpoint),
                         weights_file=str(path), checksum=entry.checksum if entry is not None else None,
                         metadata=dict(metadata))
    return model.eval()


def _over_base(parts: StateDict, metadata: Mapping[str, Any], path: Path, progress: bool
               ) -> Tuple[StateDict, dict]:
    """A parts file (:data:`PARTS_FORMAT`: some components trained over named base
    weights) -> the whole state dict and the parts' record. The base must be the
    published file (its checksum) and the parts whole components of it."""
    from .weights import get_entry, verify

    base = metadata.get("base")
    if not isinstance(base, str):
        raise CheckpointError(f"{path}: a parts file must name its base weights ('base')")
    base_path = _resolve(base, progress)
    entry = get_entry(base)
    if entry.checksum is not None and not verify(base, base_path):
        raise CheckpointError(f"{base_path}: the base weights {base!r} of {path.name} are not the "
                              f"published file; delete it so that it is fetched again")
    state, _ = read_checkpoint(base_path)
    components = sorted({key.split(".")[0] for key in parts})
    claimed = metadata.get("parts")
    if not parts or claimed != components:
        raise CheckpointError(f"{path}: the file claims trained parts {claimed} but holds "
                              f"{components or 'none'}; it is damaged or incomplete")
    for component in components:
        expected = {k for k in state if k.startswith(component + ".")}
        got = {k for k in parts if k.startswith(component + ".")}
        if expected != got:
            raise CheckpointError(f"{path}: its {component} does not fit the base weights {base!r}: "
                                  f"{_mismatches({k: state[k] for k in expected}, {k: parts[k] for k in got})}")
    merged = {**state, **{k: v.float() for k, v in parts.items()}}
    return merged, {**dict(metadata), "variant": entry.variant}


def _choose_kind(variant: Optional[str], metadata: Mapping[str, Any], state: StateDict,
                 path: Path) -> Tuple[ModelKind, str]:
    """(the kind to build, in words how it was chosen)."""
    if variant is not None:
        return model_kind(variant), "as requested"
    recorded = metadata.get("variant")
    if isinstance(recorded, str) and recorded in MODEL_REGISTRY:
        return MODEL_REGISTRY[recorded], "recorded in the checkpoint"
    return MODEL_REGISTRY[infer_variant(state, source=str(path))], "inferred from its keys"


def _assemble(kind: ModelKind, how: str, state: StateDict, metadata: Mapping[str, Any],
              path: Path) -> Model:
    """A model of ``kind`` holding the file's weights (which must fit it exactly)."""
    with torch.random.fork_rng(devices=[]), torch.device(_build_device(kind)):
        model = kind.build_model(metadata.get(kind.name))  # random weights, replaced; the caller's RNG is not used
    expected = model.state_dict()
    problems = _mismatches(expected, state)
    if problems:
        hint = ""
        if how == "as requested":
            try:
                guess: Optional[str] = infer_variant(state)
            except CheckpointError:
                guess = None
            if guess is not None and guess != kind.name:
                hint = f"; its keys look like variant {guess!r}"
        raise CheckpointError(f"{path}: does not fit model variant {kind.name!r} ({how}): {problems}{hint}")
    state = {key: value.to(expected[key].dtype).contiguous() for key, value in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    still_meta = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:  # a module with a non-persistent buffer would end here: a bug of ours
        raise RuntimeError(f"tensors not filled from the checkpoint: {still_meta[:5]}")
    return model


def _build_device(kind: ModelKind) -> str:
    """Where to build the model whose weights are about to be replaced by the file's.

    Random initialisation is wasted work: on the meta device it costs nothing per
    parameter, but the first ``normal_`` there imports torch's Python decompositions
    (about 1 s), more than initialising LiteMedSAM (0.06 s) or ViT-B (0.46 s) for real.
    Large encoders are built on the meta device, which also avoids holding two copies.
    """
    config = MODEL_CONFIGS.get(kind.name)
    if config is not None and isinstance(config.encoder, ViTConfig):
        approx = 12 * config.encoder.depth * config.encoder.embed_dim ** 2  # attention + MLP weights
        if approx > _META_BUILD_PARAMETERS:
            return "meta"
    return "cpu"


def _preprocessing(checkpoint: Union[str, os.PathLike], path: Path, kind: ModelKind,
                   metadata: Mapping[str, Any], transform: Optional[str]) -> Tuple[str, str]:
    """(transform name, where that choice came from); see the module docstring."""
    from .weights import WEIGHTS, identify_file

    if transform is not None:
        return transform, "as requested"
    if isinstance(metadata.get("transform"), str) and metadata["transform"]:
        return metadata["transform"], "recorded in the checkpoint"
    entry = WEIGHTS.get(checkpoint) if isinstance(checkpoint, str) else None
    if entry is not None and entry.variant == kind.name:
        return entry.transform, f"registered weights {entry.name}"
    if kind.promptable:  # published weights are all SAM models
        entry = identify_file(path, kind.name, skip_transform=kind.transform)
        if entry is not None:
            return entry.transform, f"the published {entry.name} file"
    return kind.transform, "the variant's default"


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
        parts.append(f"{len(missing)} missing keys: {first_items(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {first_items(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {first_items(shapes)}")
    return "; ".join(parts)


def _device(device: Union[str, torch.device, None]) -> torch.device:
    from .devices import resolve_device

    return resolve_device(device)


def _vit_summary() -> str:
    return ", ".join(f"{name} (width {c.encoder.embed_dim}, {c.encoder.depth} blocks)"
                     for name, c in MODEL_CONFIGS.items() if isinstance(c.encoder, ViTConfig))
