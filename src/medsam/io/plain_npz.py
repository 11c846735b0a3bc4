"""Read npz files whose arrays may be pickled objects, without ever running code.

The CVPR 2025 interactive challenge writes its ``boxes`` and ``clicks`` as numpy object
arrays (lists of dicts), which numpy stores as pickles. ``np.load(allow_pickle=True)``
would run whatever a pickle names, so :func:`load_plain_npz` reads each member itself:
plain arrays with ``allow_pickle=False``, object arrays through :class:`PlainUnpickler`,
which builds dicts, lists, strings, numbers and numpy arrays / scalars only and refuses
every other class or function a pickle names (``os.system`` included).
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: (module, name) pairs a pickle may name: what numpy needs to rebuild arrays and scalars
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class PlainUnpickler(pickle.Unpickler):
    """An unpickler for plain data only (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only plain data is read")
        import importlib

        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused a persistent reference: only plain data is read")


def plain(value: Any) -> Any:
    """``value`` as plain Python: object arrays become (nested) lists, numpy scalars numbers;
    numeric arrays stay arrays."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return [plain(v) for v in value.tolist()] if value.ndim else plain(value.item())
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _read_member(data: bytes) -> Any:
    fp = io.BytesIO(data)
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        _, _, dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        _, _, dtype = np.lib.format.read_array_header_2_0(fp)
    if dtype.hasobject:
        return plain(PlainUnpickler(fp).load())
    fp.seek(0)
    return np.lib.format.read_array(fp, allow_pickle=False)


def load_plain_npz(path: str | os.PathLike) -> dict[str, Any]:
    """All members of an npz file: numeric arrays as arrays, object arrays as plain data.

    Raises:
        InputError: the file cannot be read, or a member's pickle names anything but
            plain data (nothing it names is run).
    """
    path = Path(path)
    out: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[:-4]
                try:
                    out[key] = _read_member(archive.read(info))
                except pickle.UnpicklingError as exc:
                    raise InputError(f"{path}: '{key}': {exc}") from None
                except (ValueError, EOFError, TypeError, AttributeError, IndexError, KeyError) as exc:
                    raise InputError(f"{path}: '{key}' is not a readable array ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: cannot read npz file ({exc})") from None
    return out
