"""A DICOM series with a damaged, missing or repeated slice is refused, naming the files,
instead of becoming a volume with a wrong slice spacing."""

import shutil

import pytest

from medsam.errors import InputError
from medsam.io import read

DICOM = "totalseg/example_ct_dicom"


@pytest.fixture
def series(shared_data, tmp_path):
    folder = tmp_path / "series"
    shutil.copytree(shared_data / DICOM, folder)
    return folder, sorted(folder.iterdir())


def test_complete_series_reads(series):
    folder, files = series
    array, geometry = read(folder)
    assert array.shape[0] == len(files) == 20 and geometry.spacing[0] == pytest.approx(2.0)


@pytest.mark.parametrize("cut", [1000, 5000, -50_000, -5000])
def test_damaged_slice_is_named(series, cut):
    """Cut after the preamble, inside the header, or inside the pixel data."""
    folder, files = series
    files[10].write_bytes(files[10].read_bytes()[:cut])
    with pytest.raises(InputError) as info:
        read(folder)
    message = str(info.value)
    assert str(folder) in message
    assert files[10].name in message and "could not be read" in message


def test_missing_slice_is_a_gap(series):
    folder, files = series
    files[10].unlink()
    with pytest.raises(InputError, match=r"2 mm apart but .* are 4 mm apart \(about 1 missing"):
        read(folder)


def test_duplicate_slice(series):
    folder, files = series
    shutil.copy(files[5], folder / "copy_of_slice_5")
    with pytest.raises(InputError, match="a duplicate slice"):
        read(folder)


def test_segment_on_a_damaged_series_is_one_line(cli, series, tmp_path):
    folder, files = series
    files[3].write_bytes(files[3].read_bytes()[:1000])
    r = cli("segment", folder, "--box", "10,10,60,60", "--slice", "5", "-o", tmp_path / "s.nii.gz")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert files[3].name in r.stderr and "could not be read" in r.stderr
    assert not (tmp_path / "s.nii.gz").exists()
