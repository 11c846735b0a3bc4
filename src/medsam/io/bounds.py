"""Bounds on what a reader may allocate, checked from a file's header before allocating.

A small file can declare a huge array: an npy header of 10^12 bytes, a 1 MiB ``.nii.gz``
of 1 GiB of zeros, a 409-byte pickle of lists that refer to each other 40 levels deep
(2^40 items once copied). Every reader in :mod:`medsam.io` checks what a file declares
against :class:`ReadLimits` first, and counts what it decompresses or builds while it
reads, so that no input, however small, exhausts memory:

* ``max_array_bytes``: one decoded array (an image, a mask, an npz member). Default:
  half of this machine's memory, or ``$MEDSAM_MAX_ARRAY_GB`` when set;
* ``max_voxels``: voxels (pixels) of one image; None for no bound beyond the bytes;
* ``max_pickle_bytes``: the pickled part of one npz member (the challenge's ``boxes`` and
  ``clicks`` are a few KiB);
* ``max_plain_items`` and ``max_plain_depth``: the values and the nesting depth of the plain
  data built from a pickle, counted as copied, so shared references cannot multiply them.

A reader that finds a file over a bound raises :class:`TooLargeError` (an
:class:`~medsam.errors.InputError`, so the command line prints one line and exits 2, and the
web app answers 413). :func:`read_limits` lowers the bounds for a block of code: the web
app reads an upload under the memory its sessions have left.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass, replace
from typing import Any, Iterator

from ..errors import InputError

#: environment variable: the largest array a reader decodes, in GiB
MAX_ARRAY_ENV = "MEDSAM_MAX_ARRAY_GB"


class TooLargeError(InputError):
    """A file declares or holds more than a :class:`ReadLimits` bound allows."""


@dataclass(frozen=True)
class ReadLimits:
    """What one read may allocate (see the module docstring)."""

    max_array_bytes: int
    max_voxels: int | None = None
    max_pickle_bytes: int = 16 << 20
    max_plain_items: int = 1_000_000
    max_plain_depth: int = 64


def _memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def default_limits() -> ReadLimits:
    """The bounds of a read outside :func:`read_limits`: ``$MEDSAM_MAX_ARRAY_GB``, else half
    of this machine's memory, for one array.

    Raises:
        InputError: ``$MEDSAM_MAX_ARRAY_GB`` is not a positive number.
    """
    value = os.environ.get(MAX_ARRAY_ENV)
    if value:
        try:
            gib = float(value)
            if not gib > 0:
                raise ValueError
        except ValueError:
            raise InputError(f"{MAX_ARRAY_ENV}={value!r}: give a positive number of GiB") from None
        return ReadLimits(max_array_bytes=int(gib * 2**30))
    return ReadLimits(max_array_bytes=_memory_bytes() // 2)


_CURRENT: contextvars.ContextVar[ReadLimits | None] = contextvars.ContextVar("medsam_read_limits",
                                                                             default=None)


def current_limits() -> ReadLimits:
    """The bounds in force here: those of the innermost :func:`read_limits`, else
    :func:`default_limits`."""
    return _CURRENT.get() or default_limits()


@contextlib.contextmanager
def read_limits(**changes: Any) -> Iterator[ReadLimits]:
    """Read under tighter bounds in this block: ``changes`` replace fields of
    :func:`current_limits` (a bound is only lowered, never raised by this)."""
    base = current_limits()
    for key, value in changes.items():
        old = getattr(base, key)
        if value is not None and old is not None:
            changes[key] = min(old, value)
        elif value is None:
            changes[key] = old
    token = _CURRENT.set(replace(base, **changes))
    try:
        yield _CURRENT.get() or base
    finally:
        _CURRENT.reset(token)


def size_text(nbytes: float) -> str:
    """``nbytes`` as a short human size (KiB, MiB, GiB, TiB)."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024:
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"


def check_declared(path: Any, what: str, shape: tuple[int, ...] | list[int], itemsize: int) -> int:
    """The bytes an array of ``shape`` and ``itemsize`` takes; :class:`TooLargeError` naming
    ``path`` and ``what`` when that, or its voxel count, passes the bounds in force.

    A negative axis is an :class:`InputError` (a damaged header)."""
    if any(int(n) < 0 for n in shape):
        raise InputError(f"{path}: {what} declares a negative size {tuple(shape)} (damaged header)")
    count = 1
    for n in shape:
        count *= int(n)
    nbytes = count * int(itemsize)
    limits = current_limits()
    if nbytes > limits.max_array_bytes:
        hint = f"; {MAX_ARRAY_ENV} sets this bound" if _CURRENT.get() is None else ""
        raise TooLargeError(f"{path}: {what} declares {size_text(nbytes)} of data "
                            f"(shape {tuple(int(n) for n in shape)}), more than the "
                            f"{size_text(limits.max_array_bytes)} allowed here{hint}")
    if limits.max_voxels is not None and count > limits.max_voxels:
        raise TooLargeError(f"{path}: {what} declares {count} voxels, more than the "
                            f"{limits.max_voxels} allowed here")
    return nbytes


def out_of_memory(path: Any, exc: BaseException) -> InputError:
    """The one-line error for a read that ran out of memory or nesting depth."""
    if isinstance(exc, RecursionError):
        return InputError(f"{path}: nested too deeply to read")
    return TooLargeError(f"{path}: not enough memory to read this file")
