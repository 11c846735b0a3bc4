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
from .bounds import TooLargeError, check_declared, current_limits, out_of_memory, size_text

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


class _Budget:
    """Items and depth left to :func:`plain` while it copies one member."""

    def __init__(self, path: Any, key: str) -> None:
        limits = current_limits()
        self.items, self.depth = limits.max_plain_items, limits.max_plain_depth
        self.where = f"{path}: '{key}'"

    def take(self, depth: int) -> None:
        self.items -= 1
        if self.items < 0:
            raise TooLargeError(f"{self.where}: holds more than {current_limits().max_plain_items} "
                                f"values (counted as copied; shared references count each time)")
        if depth > self.depth:
            raise InputError(f"{self.where}: nested more than {self.depth} levels deep")


def plain(value: Any, budget: _Budget | None = None, depth: int = 0) -> Any:
    """``value`` as plain Python: object arrays become (nested) lists, numpy scalars numbers;
    numeric arrays stay arrays. ``budget`` bounds the values copied and the depth (a list
    that refers to itself would otherwise be copied without end)."""
    if budget is not None:
        budget.take(depth)
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return plain(value.tolist() if value.ndim else value.item(), budget, depth + 1)
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {plain(k, budget, depth + 1): plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, budget, depth + 1) for v in value]
    return value


def _read_exactly(fh: Any, view: memoryview, where: str) -> None:
    """Fill ``view`` from ``fh`` in chunks; an early end is an InputError."""
    done = 0
    while done < len(view):
        chunk = fh.read(min(1 << 20, len(view) - done))
        if not chunk:
            raise InputError(f"{where}: the data end early ({done} of {len(view)} bytes)")
        view[done:done + len(chunk)] = chunk
        done += len(chunk)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, key: str) -> Any:
    """One npy member: its header checked against the member's size and the bounds in
    force, then the data decompressed straight into the array (or, for an object array,
    at most ``max_pickle_bytes`` of pickle, unpickled as plain data)."""
    where = f"{path}: '{key}'"
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        header = fh.tell()
        if dtype.hasobject:
            limit = current_limits().max_pickle_bytes
            data = fh.read(limit + 1)
            if len(data) > limit:
                raise TooLargeError(f"{where}: more than {size_text(limit)} of pickled data")
            budget = _Budget(path, key)
            return plain(PlainUnpickler(io.BytesIO(data)).load(), budget)
        nbytes = check_declared(path, f"'{key}'", shape, dtype.itemsize)
        if header + nbytes > info.file_size:
            raise InputError(f"{where}: its header declares {size_text(nbytes)} of data (shape "
                             f"{shape}), the member holds {size_text(max(info.file_size - header, 0))}")
        array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        flat = array.reshape(-1, order="F" if fortran else "C")
        _read_exactly(fh, memoryview(flat.view(np.uint8).data) if nbytes else memoryview(b""), where)
        return array


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
                    out[key] = _read_member(archive, info, path, key)
                except InputError:
                    raise
                except (MemoryError, RecursionError) as exc:
                    raise out_of_memory(f"{path}: '{key}'", exc) from None
                except pickle.UnpicklingError as exc:
                    raise InputError(f"{path}: '{key}': {exc}") from None
                except (ValueError, EOFError, TypeError, AttributeError, IndexError, KeyError) as exc:
                    raise InputError(f"{path}: '{key}' is not a readable array ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: cannot read npz file ({exc})") from None
    return out
