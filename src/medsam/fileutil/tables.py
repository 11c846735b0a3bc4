"""CSV tables through the one write path."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from .commit import atomic_path


def _csv_value(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else ("-inf" if value < 0 else "nan"))
    return str(value)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write a CSV through :func:`atomic_path` (the file appears only when complete):
    floats as ``repr`` (every digit; ``inf``, ``-inf``, ``nan``), other values as ``str``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for row in rows:
                writer.writerow([_csv_value(v) for v in row])
    return path
