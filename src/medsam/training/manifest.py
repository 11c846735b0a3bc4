"""The prepared-data manifest: one CSV row per object per stored slice.

Columns: the fields of :class:`~medsam.training.curation.ObjectEntry` plus
``split`` (``train``, ``tune`` or ``validation``). Splits are drawn by case, per
dataset, from a seed, so no slice of a case is in two splits and adding a dataset
never moves the cases of another.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import fields
from pathlib import Path

import numpy as np

from ..errors import InputError
from .curation import ObjectEntry

SPLITS = ("train", "tune", "validation")
COLUMNS = tuple(f.name for f in fields(ObjectEntry)) + ("split",)
_INT_COLUMNS = {f.name for f in fields(ObjectEntry) if f.type in ("int", int)}
MANIFEST_NAME = "manifest.csv"


def split_counts(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Cases per split for ``n`` cases: tune and validation get at least one case each
    (when their fraction is positive and n >= 3), train the rest."""
    tune = int(round(n * fractions[1]))
    val = int(round(n * fractions[2]))
    if n >= 3:
        tune = max(tune, 1) if fractions[1] > 0 else 0
        val = max(val, 1) if fractions[2] > 0 else 0
    tune, val = min(tune, n), min(val, max(n - tune, 0))
    return n - tune - val, tune, val


def _dataset_seed(seed: int, dataset: str) -> int:
    digest = hashlib.sha256(f"{seed}:{dataset}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def assign_splits(cases: list[str], dataset: str, seed: int,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                  external: bool = False) -> dict[str, str]:
    """Map each case id to a split, reproducibly from ``seed`` and the dataset name
    (the order of ``cases`` does not matter). External datasets are all validation."""
    ordered = sorted(set(cases))
    if external:
        return {case: "validation" for case in ordered}
    rng = np.random.default_rng(_dataset_seed(seed, dataset))
    order = [ordered[i] for i in rng.permutation(len(ordered))]
    n_train, n_tune, _ = split_counts(len(order), fractions)
    return {case: ("train" if i < n_train else "tune" if i < n_train + n_tune else "validation")
            for i, case in enumerate(order)}


def write_manifest(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write rows (dicts with :data:`COLUMNS`) as CSV, atomically."""
    from ..fileutil import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in COLUMNS})
    return path


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a manifest CSV with integer columns as ints; InputError when the file is
    missing or lacks columns. ``path`` may be the prepared folder."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise InputError(f"{path}: manifest not found (run `medsam prepare` first)")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: not a medsam manifest (missing columns "
                             f"{sorted(missing)})")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append({k: (int(v) if k in _INT_COLUMNS else v) for k, v in row.items()
                             if k in COLUMNS})
            except ValueError:
                raise InputError(f"{path}: line {line} has a non-integer value") from None
    return rows
