"""Box-prompted segmentation of 2D images and volumes with any 2D segmenter.

* :mod:`.prompts` - prompts (``BoxPrompt`` as given, ``ResolvedPrompt`` once checked against
  the image) and prompts files (JSON, CSV; per case); their geometric checks are
  :mod:`medsam.prompt_geometry`'s;
* :mod:`.segmenter` - the ``Segmenter2D`` protocol and a per-slice cache;
* :mod:`.runner` - one slice of one object (``SliceRunner``);
* :mod:`.engine` - the 3D engine: one object from its prompt, the slice walk and the click
  rules (``object_mask``, ``VolumeObject``), 2D images as volumes of one slice;
* :mod:`.session` - the interactive session (objects, clicks, undo);
* :mod:`.pipeline` - ``segment(image, geometry, prompts, segmenter)``;
* :mod:`.medsam_segmenter` - MedSAM as a ``Segmenter2D`` (embeddings cached per slice)
  and ``segment_image(image, geometry, prompts, model)``;
* :mod:`.unet_segmenter` - the box-cropped U-Net as a ``Segmenter2D``
  (:mod:`.segmenters`: ``make_segmenter(model)`` picks the one ``SEGMENTERS`` gives its kind);
* :mod:`.cases` - cases on disk (files, DICOM folders, npz with boxes), output names.

The intensity step is :func:`medsam.intensity.prepare_intensities`; label volumes are
:func:`medsam.metrics.label_volumes`.
"""

from ..prompt_geometry import mask_to_box, reference_box_to_world, validate_box_2d, world_box_to_pixels
from .cases import Case, find_cases, load_case, output_path_for
from .engine import object_mask, propagate_3d
from .medsam_segmenter import MedSAMSegmenter, segment_image
from .pipeline import segment
from .prompt_files import (
    PromptsFile,
    load_prompts,
    parse_box_text,
    parse_prompts,
    prompts_from_npz_boxes,
    read_prompts_file,
)
from .prompts import (
    BoxPrompt,
    Click,
    ResolvedPrompt,
    resolve_prompt,
    resolve_prompts,
)
from .runner import slice_mask
from .segmenter import (
                      CallableSegmenter,
                      PointSegmenter2D,
                      Segmenter2D,
                      SliceCache,
                      as_segmenter,
)
from .segmenters import SEGMENTERS, make_segmenter
from .unet_segmenter import BoxUNetSegmenter

__all__ = [
    "BoxPrompt", "Click", "PromptsFile", "ResolvedPrompt", "load_prompts", "parse_box_text", "parse_prompts",
    "read_prompts_file",
    "prompts_from_npz_boxes", "resolve_prompt", "resolve_prompts", "mask_to_box",
    "validate_box_2d", "world_box_to_pixels", "reference_box_to_world",
    "Segmenter2D", "PointSegmenter2D", "slice_mask", "CallableSegmenter",
    "SliceCache",
    "as_segmenter", "propagate_3d", "object_mask", "segment", "Case",
    "load_case", "find_cases", "output_path_for", "MedSAMSegmenter", "BoxUNetSegmenter", "make_segmenter", "SEGMENTERS",
    "segment_image",
]
