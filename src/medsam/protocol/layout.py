"""The output folder of ``medsam reproduce``, and reading what earlier steps left there::

    prepared/                  medsam prepare's output (split 80/10/10 by case; external
                               datasets are all validation)
    train/finetune/            LiteMedSAM fine-tuned (medsam train's run folder)
    train/unet_<category>/     one U-Net per image category with training data
    results/<setting>/<dataset>.csv   every method's rows (medsam evaluate's columns)
    results/<dataset>.json     which methods, cases and settings those rows are for
    volumes/  raters/<dataset>/        tumour-volume agreement, model against raters
    report/<setting>/          medsam report's folder per box setting
    steps.json                 each finished step's time and note
    index.html, index.md       everything on one page (:mod:`medsam.protocol.page`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..datasets.description import Description
from ..fileutil import atomic_path
from .config import category

STEPS_FILE = "steps.json"


def read_steps(out: Path) -> dict[str, dict]:
    """Each finished step's record (seconds, note, finished) from ``steps.json``."""
    path = out / STEPS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path`` (atomically; parent folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def manifest_rows(out: Path) -> list[dict]:
    """The prepared objects (``prepared/``'s manifest rows: dataset, case, split, ...)."""
    from ..training.manifest import read_manifest

    return read_manifest(out / "prepared")


def evaluation_cases(rows: list[dict], dataset: str) -> list[str]:
    """A dataset's validation cases (all of an external dataset's)."""
    return sorted({r["case"] for r in rows if r["dataset"] == dataset and r["split"] == "validation"})


def train_datasets(rows: list[dict], description: Description) -> dict[str, list[str]]:
    """Category -> the datasets with training objects (external ones have none)."""
    trained = {r["dataset"] for r in rows if r["split"] == "train"}
    out: dict[str, list[str]] = {}
    for spec in description.datasets:
        if spec.name in trained:
            out.setdefault(category(spec.modality), []).append(spec.name)
    return out


def unet_folder(out: Path, image_category: str) -> Path:
    """The run folder of the U-Net of an image category (:func:`~.config.category`)."""
    return out / "train" / f"unet_{image_category}"


def weights_file(folder: Path) -> Path | None:
    """A run folder's best.pth, else last.pth (no tuning data), else None."""
    for name in ("best.pth", "last.pth"):
        if (folder / name).is_file():
            return folder / name
    return None
