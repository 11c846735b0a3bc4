"""medsam: promptable medical image segmentation (MedSAM).

Public names are imported lazily so that ``import medsam`` does no work
(in particular it does not import torch) until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

# public name -> module that defines it
_LAZY = {
    "build_model": "medsam.modeling.registry",
    "load_model": "medsam.loading",
    "MedSAMPredictor": "medsam.predictor",
    "segment_image": "medsam.segmentation.medsam_segmenter",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medsam' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
