import shutil
from pathlib import Path

import pytest

from medsam.errors import InputError
from medsam.segmentation.cases import case_name, find_cases, load_case, output_path_for

DICOM = "totalseg/example_ct_dicom"


def test_load_cases(shared_data):
    dicom = load_case(shared_data / DICOM)
    assert dicom.image.shape == (20, 512, 512) and dicom.modality == "ct" and not dicom.is_npz
    assert dicom.name == "example_ct_dicom"
    npz = load_case(shared_data / "medficientsam_mammo/2DBox_Mammography_demo.npz")
    assert npz.is_npz and npz.boxes.shape == (4, 4) and npz.geometry.ndim == 2
    nii = load_case(shared_data / "totalseg/example_mr_sm.nii.gz")
    assert nii.modality is None and nii.geometry.ndim == 3 and nii.name == "example_mr_sm"
    with pytest.raises(InputError, match="no such file"):
        load_case(shared_data / "nope.nii.gz")


def test_output_paths(shared_data, tmp_path):
    assert output_path_for(Path("/d/ct.nii.gz")) == Path("/d/ct_seg.nii.gz")
    assert output_path_for(Path("/d/x.jpg")) == Path("/d/x_seg.png")
    assert output_path_for(Path("/d/c.npz"), "/out") == Path("/out/c.npz")
    assert output_path_for(shared_data / DICOM) == shared_data / "totalseg/example_ct_dicom_seg.nii.gz"
    assert output_path_for(Path("/d/a.png"), ext=".nii.gz") == Path("/d/a_seg.nii.gz")
    with pytest.raises(InputError, match="cannot be written"):
        output_path_for(Path("/d/a.png"), ext=".jpg")
    assert case_name("a/b.nii.gz") == "b"


def test_find_cases(shared_data, tmp_path):
    assert find_cases(shared_data / DICOM) == [shared_data / DICOM]       # one DICOM case
    for name in ("a.png", "b.nii.gz", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    shutil.copytree(shared_data / DICOM, tmp_path / "series")
    (tmp_path / "empty").mkdir()
    assert [p.name for p in find_cases(tmp_path)] == ["a.png", "b.nii.gz", "series"]
    with pytest.raises(InputError, match="no images to segment"):
        find_cases(tmp_path / "empty")


def test_case_name_is_one_rule_for_every_command():
    from medsam.evaluation import runner

    assert case_name("x/liver_01.seg.nrrd") == "liver_01"
    assert case_name("x/liver_01.nrrd") == "liver_01"
    assert case_name("x/a.b.png") == "a.b"
    assert runner.case_name is case_name


def test_folder_name_skips_generic_folder_names(tmp_path):
    from medsam.segmentation.cases import folder_name

    assert folder_name(tmp_path / "kidney" / "test" / "gt") == "kidney"
    assert folder_name(tmp_path / "liver_masks") == "liver_masks"
    assert folder_name(tmp_path / "MedSAM" / "Pred") == "MedSAM"
