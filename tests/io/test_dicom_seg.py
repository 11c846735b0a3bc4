"""DICOM SEG out and in, on the real CT series of ../shared/data (TotalSegmentator's
example, 20 slices) and its reference organs: the references, segments, algorithm and
frame geometry read back with highdicom and with pydicom alone, the voxels equal to the
label map, dciodvfy (Debian's dicom3tools) finds no error, and bad input is refused."""

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medsam import io
from medsam.errors import InputError
from medsam.io import Code, label_colour, segments_of
from medsam.io.dicom_seg import Algorithm, is_dicom_seg, read_dicom_seg, seg_sources, write_dicom_seg

SERIES = "totalseg/example_ct_dicom"
REFERENCE = "totalseg/example_seg_dicom.nii.gz"   # the same scan as NIfTI: its rows run the other way
DCIODVFY = Path("/usr/bin/dciodvfy")
KIDNEY = (Code("SCT", "123037004", "Anatomical Structure"), Code("SCT", "64033007", "Kidney"))


@pytest.fixture(scope="module")
def organs(pacs_ct_series, shared_data):
    """Two reference organs (labels 1 and 3) on the series' grid, and that grid."""
    _, geometry = io.read(pacs_ct_series)
    reference, ref_geometry = io.read(shared_data / REFERENCE)
    flipped = io.Geometry(ref_geometry.spacing, tuple(ref_geometry.index_to_world([0, 511, 0])),
                          (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    np.testing.assert_allclose(flipped.origin, geometry.origin, atol=1e-4)   # rows reversed: the same grid
    reference = reference[:, ::-1]
    present = [int(v) for v in np.unique(reference) if v > 0]
    labels = np.zeros(reference.shape, np.uint8)
    labels[reference == present[0]] = 1
    labels[reference == present[1]] = 3
    assert (labels == 1).sum() > 1000 and (labels == 3).sum() > 1000
    return labels, geometry


@pytest.fixture(scope="module")
def written(pacs_ct_series, organs, tmp_path_factory):
    labels, _ = organs
    files = io.list_dicom_series(pacs_ct_series)[0].files
    segments = segments_of(labels, {1: "organ one", 3: "kidney"}, {3: KIDNEY})
    path = tmp_path_factory.mktemp("seg") / "organs.dcm"
    write_dicom_seg(labels, path, seg_sources(files), segments, Algorithm("lite_medsam", "0.1.0", "ab" * 32))
    return path, files


def test_highdicom_reads_the_references_segments_algorithm_and_geometry(written):
    import highdicom as hd

    path, files = written
    seg = hd.seg.segread(str(path))
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == \
        {s.SOPInstanceUID for s in sources}
    described = [(int(s.SegmentNumber), s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning,
                  s.SegmentedPropertyCategoryCodeSequence[0].CodeValue, s.TrackingID) for s in seg.SegmentSequence]
    assert described == [(1, "organ one", "Tissue", "85756007", "label 1"),
                         (2, "kidney", "Kidney", "123037004", "label 3")]
    algorithm = seg.SegmentSequence[1].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("lite_medsam", "0.1.0")
    assert algorithm.AlgorithmParameters == "weights_sha256=" + "ab" * 32
    # one frame per source instance, at its position, with its orientation and pixel spacing
    positions = sorted(tuple(float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient)
                       for f in seg.PerFrameFunctionalGroupsSequence)
    assert len(positions) == 2 * len(sources)      # two segments x 20 slices, none left out
    assert sorted(set(positions)) == sorted(tuple(float(v) for v in s.ImagePositionPatient) for s in sources)
    shared = seg.SharedFunctionalGroupsSequence[0]
    assert [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient] == \
        [float(v) for v in sources[0].ImageOrientationPatient]
    assert [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing] == \
        [float(v) for v in sources[0].PixelSpacing]


def test_pydicom_alone_gives_the_label_maps_voxels(written, organs):
    path, files = written
    labels, _ = organs
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    z_of = {float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]): z for z, f in enumerate(files)}
    rebuilt = np.zeros_like(labels)
    label_of = {1: 1, 2: 3}
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        z = z_of[float(item.PlanePositionSequence[0].ImagePositionPatient[2])]
        rebuilt[z][frame > 0] = label_of[int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)]
    np.testing.assert_array_equal(rebuilt, labels)


def test_our_reader_gives_the_labels_on_the_series_grid(written, organs, same_place):
    path, _ = written
    labels, geometry = organs
    assert is_dicom_seg(path) and not is_dicom_seg(written[1][0])   # the SEG, not a CT slice
    back, back_geometry = io.read(path)
    np.testing.assert_array_equal(back, labels)
    assert same_place(back_geometry, geometry)


def test_dciodvfy_finds_no_error(written):
    if not DCIODVFY.exists():
        pytest.fail(f"{DCIODVFY} is missing: install Debian's dicom3tools (apt-get install dicom3tools), "
                    f"as .ci/run does")
    done = subprocess.run([str(DCIODVFY), str(written[0])], capture_output=True, text=True)
    report = done.stdout + done.stderr
    assert "Segmentation" in report
    assert not [line for line in report.splitlines() if line.startswith("Error")], report


def test_an_anonymised_series_without_uids_is_refused(shared_data):
    files = io.list_dicom_series(shared_data / SERIES)[0].files
    with pytest.raises(InputError, match="has no StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, "
                                         "SOPClassUID .*must reference the source series"):
        seg_sources(files)


def test_a_label_map_that_does_not_fit_the_series_is_refused(written, organs, tmp_path):
    labels, _ = organs
    sources = seg_sources(written[1])
    with pytest.raises(InputError, match="the label map has 19 slices, the source series 20"):
        write_dicom_seg(labels[1:], tmp_path / "x.dcm", sources, segments_of(labels), Algorithm("m", "1"))
    with pytest.raises(InputError, match="output exists"):
        write_dicom_seg(labels, written[0], sources, segments_of(labels), Algorithm("m", "1"))
    assert not list(tmp_path.iterdir())


def test_a_corrupt_seg_is_named(written, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(written[0].read_bytes()[:5000])
    with pytest.raises(InputError, match=f"{broken}: not a readable DICOM SEG"):
        read_dicom_seg(broken)
    with pytest.raises(InputError, match=f"{broken}: not a readable DICOM SEG"):
        io.read(broken)


def test_write_labels_needs_the_source_for_dcm(organs, tmp_path):
    labels, geometry = organs
    with pytest.raises(InputError, match="a DICOM SEG is written for a DICOM input"):
        io.write_labels(labels, tmp_path / "x.dcm", geometry)
    assert not list(tmp_path.iterdir())


def test_segment_colours_follow_the_palette(organs):
    labels, _ = organs
    assert [s.colour for s in segments_of(labels)] == [label_colour(1), label_colour(3)]


def test_the_copy_keeps_the_pixels(pacs_ct_series, shared_data):
    np.testing.assert_array_equal(io.read(pacs_ct_series)[0], io.read(shared_data / SERIES)[0])
