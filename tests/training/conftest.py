"""Fixtures for the training tests: small prepared sets made from the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medsam.datasets.description import parse_description
from medsam.training.prepare import prepare


def jsrt_dataset(**extra) -> dict:
    """All 18 JSRT chest X-rays with right lung, left lung and heart labels."""
    return {"name": "jsrt", "modality": "xray", "images": "jsrt_scr_cxr/images/*.png",
            "labels": "jsrt_scr_cxr/masks_labels/{stem}.png",
            "classes": {"1": "right_lung", "2": "left_lung", "3": "heart"}, **extra}


def recist_dataset(**extra) -> dict:
    """Six 3D CT lesion crops (npz holding imgs and gts, already windowed)."""
    return {"name": "recist", "modality": "ct", "images": "medsam2_recist/*.npz",
            "intensity": "none", **extra}


def write_description(folder: Path, shared_data: Path, datasets: list[dict], **top) -> Path:
    """A description file in ``folder`` naming files under ``shared_data`` by absolute glob."""
    for d in datasets:
        d["images"] = str(shared_data / d["images"])
        if d.get("labels"):
            d["labels"] = str(shared_data / d["labels"])
    path = folder / "description.json"
    path.write_text(json.dumps({"datasets": datasets, **top}))
    return path


@pytest.fixture(scope="session")
def prepared_jsrt(shared_data, tmp_path_factory) -> Path:
    """JSRT prepared once per session (14 train / 2 tune / 2 validation cases)."""
    out = tmp_path_factory.mktemp("prepared_jsrt")
    description = parse_description({"seed": 0, "datasets": [jsrt_dataset()]}, shared_data)
    prepare(description, out, workers=0, progress=False)
    return out
