import re

import numpy as np
import pytest

from medsam.datasets.description import case_id
from medsam.errors import InputError


def test_one_case_pattern_rule():
    """Descriptions and folders of masks share one rule: the first group, else the whole
    match; a name the pattern does not match is an error that names it, never skipped."""
    assert case_id("21_manual1", None, "x") == "21_manual1"
    assert case_id("21_manual1", r"^(\d+)_", "x") == "21"
    assert case_id("21_manual1", re.compile(r"\d+"), "x") == "21"
    with pytest.raises(InputError, match=r"^rater 'A': case_pattern .* does not match 'notes'; give a") as caught:
        case_id("notes", r"^(\d+)_", "rater 'A'")
    assert caught.value.option == "case_pattern"


def test_a_mask_folder_file_the_pattern_does_not_name_is_an_error(tmp_path):
    from PIL import Image

    from medsam.evaluation.runner import list_cases

    for name in ("01_manual1.png", "02_manual1.png", "overview.png"):
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    with pytest.raises(InputError, match="overview.png: case_pattern .* does not match 'overview'"):
        list_cases(tmp_path, "reference", re.compile(r"^(\d+)_"))
    (tmp_path / "overview.png").unlink()
    assert list(list_cases(tmp_path, "reference", re.compile(r"^(\d+)_"))) == ["01", "02"]


def test_non_integer_labels_need_a_threshold(tmp_path):
    from medsam.datasets.cases import select_labels
    from medsam.datasets.description import DatasetSpec

    spec = DatasetSpec(name="x", modality="rgb", images="*", labels=None, root=tmp_path)
    with pytest.raises(InputError, match="label_threshold"):
        select_labels(spec, np.array([[0.0, 0.5]]))
    soft = DatasetSpec(name="x", modality="rgb", images="*", labels=None, root=tmp_path,
                       label_threshold=127)
    assert select_labels(soft, np.array([[10, 200]])).tolist() == [[0, 1]]


def test_one_mask_file_per_class(shared_data):
    """SAM-Med2D's demo slices: one binary PNG per organ; a missing file is an absent organ."""
    from PIL import Image

    from medsam.datasets.cases import find_dataset_cases, read_case, select_labels
    from medsam.datasets.description import parse_dataset

    spec = parse_dataset({"name": "sammed2d", "modality": "ct", "intensity": "none",
                          "images": "sammed2d_demo/images/*.png",
                          "labels": "sammed2d_demo/masks/{stem}_{class}_000.png",
                          "classes": {"1": "liver", "2": "spleen", "3": "aorta"}},
                         shared_data, "test")
    cases = {c.case: c for c in find_dataset_cases(spec)}
    assert len(cases) == 5
    assert [label for label, _ in cases["amos_0006_90"].class_files] == [1, 2, 3]
    assert cases["s0619_32"].class_files == ()          # none of these organs on that slice
    image, labels, _ = read_case(spec, cases["amos_0006_90"])
    labels = select_labels(spec, labels)
    spleen = np.asarray(Image.open(shared_data / "sammed2d_demo/masks/amos_0006_90_spleen_000.png")) > 0
    assert labels.shape == image.shape[:2] and set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.array_equal(labels == 2, spleen & (labels != 3))   # the aorta, painted last, wins overlaps
    _, empty, _ = read_case(spec, cases["s0619_32"])
    assert not empty.any()


def test_class_template_needs_classes(tmp_path):
    from medsam.datasets.description import parse_dataset

    with pytest.raises(InputError, match="needs 'classes'"):
        parse_dataset({"name": "x", "modality": "ct", "images": "*.png", "labels": "{stem}_{class}.png"},
                      tmp_path, "test")


def test_cases_named_by_their_folder_and_a_chosen_few(shared_data):
    """The soft-tissue sarcoma set keeps one patient per folder (``STS_002/CT_image.nii.gz``):
    a case pattern holding "/" names cases by their folder, and ``cases`` keeps a list."""
    from medsam.datasets.cases import find_dataset_cases
    from medsam.datasets.description import parse_dataset

    item = {"name": "sts_ct", "modality": "ct", "images": "ibsi_sts/*/CT_image.nii.gz",
            "case_pattern": "^(STS_\\d+)/", "labels": "ibsi_sts/{case}/CT_mask.nii.gz"}
    every = find_dataset_cases(parse_dataset(item, shared_data, "test"))
    assert len(every) == 28 and every[0].case == "STS_002"
    assert every[0].label == shared_data / "ibsi_sts" / "STS_002" / "CT_mask.nii.gz"
    few = find_dataset_cases(parse_dataset({**item, "cases": ["STS_006", "STS_031"]}, shared_data, "test"))
    assert [c.case for c in few] == ["STS_006", "STS_031"]
    with pytest.raises(InputError, match="cases STS_999 are not among its images"):
        find_dataset_cases(parse_dataset({**item, "cases": ["STS_999"]}, shared_data, "test"))
