"""Load Meta's reference ``segment_anything`` (PyPI ``segment-anything==1.0``) for
comparison tests, without running its package ``__init__``.

That ``__init__`` imports the predictor and the automatic mask generator, which
import torchvision; there is no CPU build of torchvision here. We create an empty
package object for ``segment_anything`` and import only ``modeling`` and
``build_sam`` beneath it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

import pytest


def load_reference():
    """Return ``(modeling, build_sam)`` modules of the reference implementation,
    or skip the test when ``segment-anything`` is not installed (it is a test
    dependency, installed by the README's set-up command and in CI)."""
    name = "segment_anything"
    if name in sys.modules and hasattr(sys.modules[name], "_medsam_stub"):
        return importlib.import_module(f"{name}.modeling"), importlib.import_module(f"{name}.build_sam")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("segment-anything==1.0 is not installed (pip install -e '.[test]')")
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package._medsam_stub = True
    sys.modules[name] = package
    modeling = importlib.import_module(f"{name}.modeling")
    build_sam = importlib.import_module(f"{name}.build_sam")
    return modeling, build_sam
