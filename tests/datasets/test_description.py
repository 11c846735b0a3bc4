import json

import pytest

from medsam.datasets.description import load_description, parse_description
from medsam.errors import InputError


def test_json_description_is_parsed_with_defaults(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"datasets": [{"name": "a", "modality": "MRI",
                                              "images": "img/*.nii.gz",
                                              "labels": "lab/{stem}.nii.gz"}]}))
    d = load_description(path)
    spec = d.datasets[0]
    assert spec.modality == "mr" and spec.root == tmp_path
    assert (spec.min_pixels, spec.min_voxels, spec.axis) == (100, 1000, 0)
    assert d.split == (0.8, 0.1, 0.1) and d.seed == 0


def test_yaml_description(tmp_path):
    pytest.importorskip("yaml", reason="PyYAML is in the test extra")
    path = tmp_path / "d.yaml"
    path.write_text("seed: 3\ndatasets:\n  - name: ct1\n    modality: ct\n    images: '*.nii'\n"
                    "    labels: 'l/{stem}.nii'\n    intensity: {window: lung}\n"
                    "    classes: {1: liver, 2: spleen}\n")
    d = load_description(path)
    assert d.seed == 3
    assert d.datasets[0].classes == ((1, "liver"), (2, "spleen"))
    assert d.datasets[0].intensity.window == "lung"


@pytest.mark.parametrize("item, message", [
    ({"name": "a", "modality": "xray"}, "'images' is required"),
    ({"name": "a", "modality": "sonar", "images": "x"}, "unknown modality"),
    ({"name": "a b", "modality": "ct", "images": "x"}, "may only hold"),
    ({"name": "a", "modality": "mr", "images": "x", "intensity": {"window": "lung"}},
     "CT window was given"),
    ({"name": "a", "modality": "ct", "images": "x", "intensity": {"window": "nope"}},
     "unknown CT window"),
    ({"name": "a", "modality": "ct", "images": "x", "colour": 1}, "unknown keys"),
    ({"name": "a", "modality": "ct", "images": "x", "classes": {"0": "bg"}}, "must be positive"),
    ({"name": "a", "modality": "ct", "images": "x", "tile_size": 64, "tile_overlap": 64},
     "tile_overlap"),
    ({"name": "a", "modality": "ct", "images": "x", "cases": "STS_002"}, "'cases' must be a non-empty list"),
    ({"name": "a", "modality": "ct", "images": "x", "split_group": "a b"}, "'split_group' must be a name"),
])
def test_bad_dataset_entries_raise_input_error(tmp_path, item, message):
    with pytest.raises(InputError, match=message):
        parse_description({"datasets": [item]}, tmp_path)


def test_bad_top_level(tmp_path):
    ok = {"name": "a", "modality": "ct", "images": "x"}
    with pytest.raises(InputError, match="non-empty list"):
        parse_description({"datasets": []}, tmp_path)
    with pytest.raises(InputError, match="unique"):
        parse_description({"datasets": [ok, ok]}, tmp_path)
    with pytest.raises(InputError, match="summing to 1"):
        parse_description({"datasets": [ok], "split": [0.5, 0.1, 0.1]}, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_description(bad)
    with pytest.raises(InputError, match="file not found"):
        load_description(tmp_path / "missing.json")


def test_root_prompt_and_case_pattern(tmp_path):
    (tmp_path / "data").mkdir()
    path = tmp_path / "desc" / "d.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"root": "../data", "datasets": [
        {"name": "drive", "modality": "fundus", "images": "img/*.tif",
         "labels": "lab/{case}_manual1.gif", "case_pattern": "^(\\d+)_"},
        {"name": "lesions", "modality": "ct", "images": "*.npz", "prompt": "key_slice"}]}))
    drive, lesions = load_description(path).datasets
    assert drive.root == path.parent / "../data"
    assert drive.case_id("01_test") == "01" and drive.prompt == "box"
    assert lesions.prompt == "key_slice" and lesions.case_id("x_1") == "x_1"
    with pytest.raises(InputError, match="case_pattern .* does not match 'test'"):
        drive.case_id("test")


@pytest.mark.parametrize("change, message", [
    ({"root": "missing"}, "'root' folder .*missing does not exist"),
    ({"root": 3}, "'root' must be a folder path"),
    ({"datasets": [{"name": "a", "modality": "ct", "images": "x", "prompt": "points"}]},
     "'prompt' must be one of box, key_slice"),
    ({"datasets": [{"name": "a", "modality": "ct", "images": "x", "case_pattern": "("}]},
     "'case_pattern' is not a regular expression"),
])
def test_bad_root_prompt_case_pattern(tmp_path, change, message):
    data = {"datasets": [{"name": "a", "modality": "ct", "images": "x"}], **change}
    with pytest.raises(InputError, match=message):
        parse_description(data, tmp_path)
