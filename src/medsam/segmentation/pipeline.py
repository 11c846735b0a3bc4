"""Box prompts + an image with its geometry -> a label map, for 2D images and volumes.

:func:`segment` is what ``medsam segment`` runs (the command adds only file handling):
prompts are checked against the image (world boxes converted through the geometry),
2D boxes without clicks are segmented in one batch; every other object (a volume's, a 2D
object with clicks) through the 3D engine (:func:`~.engine.object_mask`), a 2D image as a
volume of one slice. Per-slice keys let a caching segmenter (MedSAM) compute each slice's
embedding once for all objects.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from ..io.geometry import Geometry
from .engine import MODES, object_mask, walk_config
from .prompts import BoxPrompt, resolve_prompts
from .quality import object_quality
from .runner import CONTENT
from .segmenter import as_segmenter, content_key


def compose_labels(shape: Sequence[int], masks: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
    """One label map of ``shape`` from ``(label, bool mask)`` pairs painted in order (a later
    object wins where two overlap): uint8, or uint16 when a label exceeds 255."""
    dtype = np.uint8 if max((label for label, _ in masks), default=0) <= 255 else np.uint16
    labels = np.zeros(tuple(shape), dtype)
    for label, mask in masks:
        labels[np.asarray(mask, dtype=bool)] = label
    return labels


def segment(image: np.ndarray, geometry: Geometry, prompts: Sequence[BoxPrompt], segmenter: Any,
            mode: str = "propagate", margin: float | None = None, min_pixels: int | None = None,
            cache_key: Hashable | None = None, progress: bool = False,
            qualities: list | None = None) -> np.ndarray:
    """Segment every prompted object and return one label map.

    Args:
        image: ``(y, x)`` / ``(y, x, 3)`` image or ``(z, y, x)`` volume, already in the intensity
            range the segmenter expects.
        geometry: the image's geometry (2D or 3D; decides how ``image`` is read).
        prompts: boxes with label ids (pixel or world coordinates), optional slice ranges,
            and clicks anywhere in the image (applied in order, see :mod:`.engine`; a
            segmenter without ``segment_points`` takes none).
        segmenter: a ``Segmenter2D`` or a callable ``(image2d, box) -> mask``.
        mode: ``"propagate"`` or ``"plain"`` for volumes (see :mod:`.engine`).
        margin, min_pixels: override the propagation's defaults
            (:data:`~medsam.segmentation.engine.DEFAULT_WALK`).
        cache_key: names this image for the segmenter's per-slice cache; None (the
            default): each slice is keyed by its contents, so a segmenter passed to
            several calls reuses the embeddings of slices it has seen (its cache is
            bounded, least recently used first out).
        progress: a progress bar over the slices of a volume's objects
            (:func:`medsam.progress.progress_bar`; each object counts its slice range, the
            whole volume without one, and a walk that ends early jumps to its object's end).
        qualities: a list that gets each object's
            :class:`~medsam.segmentation.quality.ObjectQuality` (predicted IoU, warnings),
            in prompt order.
    Returns:
        label map with the image's spatial shape (uint8, or uint16 for labels > 255);
        0 = background; where objects overlap, the later prompt wins.
    Raises:
        InputError: a prompt does not fit the image (box outside, zero size, bad slice, ...).
    """
    from ..progress import progress_bar

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    image = np.asarray(image)
    geometry.check_shape(image.shape, what="image")
    shape = image.shape[:geometry.ndim]
    resolved = resolve_prompts(prompts, shape, geometry, mode)
    segmenter = as_segmenter(segmenter)
    config = walk_config(margin, min_pixels)

    keys = CONTENT if cache_key is None else cache_key
    if geometry.ndim == 2:
        segmenter.set_slice(image, key=content_key(image) if cache_key is None else (cache_key, 0))
        plain = [i for i, p in enumerate(resolved) if not p.clicks]  # one batch; clicks one by one
        batch = segmenter.segment(np.array([resolved[i].box2d for i in plain])) if plain else []
        masks = dict(zip(plain, np.asarray(batch, dtype=bool)))
        batch_scores = getattr(segmenter, "last_scores", None)
        scores: dict[int, dict[int, float]] = {}
        if batch_scores is not None and len(batch_scores) == len(plain):
            scores = {i: {0: float(v)} for i, v in zip(plain, batch_scores)}
        for i, p in enumerate(resolved):
            if i not in masks:
                mask3d, scores[i] = object_mask(image[None], segmenter, p, config, cache_key=keys)
                masks[i] = mask3d[0]
        if qualities is not None:
            qualities += [object_quality(p.label, masks[i], scores.get(i, {})) for i, p in enumerate(resolved)]
        return compose_labels(shape, [(p.label, masks[i]) for i, p in enumerate(resolved)])

    out = []
    depth = int(image.shape[0])
    spans = [p.slices(depth) for p in resolved]
    bar = progress_bar(total=sum(spans), desc="slices", unit="slice", enabled=progress, leave=False)
    for number, (p, span) in enumerate(zip(resolved, spans), start=1):
        start = bar.n
        if len(resolved) > 1:
            bar.set_description(f"object {number}/{len(resolved)}: slices", refresh=False)
        mask, slice_scores = object_mask(image, segmenter, p, config, mode, keys, on_slice=lambda _: bar.update())
        if qualities is not None:
            qualities.append(object_quality(p.label, mask, slice_scores, p.start, p.z_range,
                                            range_given=p.z_range is not None))
        out.append((p.label, mask))
        bar.update(max(0, start + span - bar.n))   # the walk stops where the object ends
    bar.close()
    return compose_labels(shape, out)
