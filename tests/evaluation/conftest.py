"""Fixtures: result tables computed from real masks of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from medsam.evaluation.results import rows_from_metrics, write_results
from medsam.metrics import evaluate_labels

DESCRIPTION = Path(__file__).resolve().parents[2] / "examples" / "datasets" / "shared_data.json"


@pytest.fixture(scope="session")
def description(shared_data):
    """The repository's description of the shared data, rooted at the shared data folder
    these tests use (MEDSAM_SHARED_DATA may move it)."""
    from medsam.datasets.description import parse_description, read_structured_file

    data = read_structured_file(DESCRIPTION)
    assert data.pop("root") == "../../../shared/data"
    return parse_description(data, shared_data, source=DESCRIPTION)


def lesion_cases(shared_data):
    for path in sorted((shared_data / "medsam2_recist").glob("*.npz")):
        with np.load(path) as data:
            yield path, data["gts"].astype(np.uint8), tuple(float(s) for s in data["spacing"][::-1])


@pytest.fixture(scope="session")
def method_tables(shared_data):
    """Two 'methods' on the six real CT lesions and 20 JSRT lung masks:
    ``dilated`` (grown by one voxel) and ``shifted`` (moved by 3 voxels)."""
    from PIL import Image

    tables = {"dilated": [], "shifted": []}
    for path, gt, spacing in lesion_cases(shared_data):
        tables["dilated"] += rows_from_metrics(
            evaluate_labels(ndimage.binary_dilation(gt).astype(np.uint8), gt, spacing, case=path.stem),
            "CT lesion", "dilated")
        tables["shifted"] += rows_from_metrics(
            evaluate_labels(np.roll(gt, 3, axis=2), gt, spacing, case=path.stem), "CT lesion", "shifted")
    for path in sorted((shared_data / "jsrt_scr_cxr" / "masks").glob("*.png"))[:10]:
        gt = (np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8)
        tables["dilated"] += rows_from_metrics(
            evaluate_labels(ndimage.binary_dilation(gt, iterations=2).astype(np.uint8), gt, (0.35, 0.35),
                            labels=[1], case=path.stem), "lung CXR", "dilated")
        tables["shifted"] += rows_from_metrics(
            evaluate_labels(np.roll(gt, 3, axis=1), gt, (0.35, 0.35), labels=[1], case=path.stem),
            "lung CXR", "shifted")
    return tables


@pytest.fixture
def result_csvs(method_tables, tmp_path):
    paths = []
    for method, rows in method_tables.items():
        paths.append(write_results(rows, tmp_path / f"{method}.csv"))
    return paths
