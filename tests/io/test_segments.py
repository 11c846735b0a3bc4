"""3D Slicer's segment fields in ``.seg.nrrd``: read from files Slicer wrote (the samples that
ship with slicerio, Slicer's own file reader for Python), and ours read back by slicerio and
by our reader, on a real CT's organ labels."""

import numpy as np
import pytest
import slicerio  # noqa: E402  (test dependency: 3D Slicer's own .seg.nrrd reader and sample files)

from medsam import io
from medsam.errors import InputError
from medsam.io import TISSUE, Code, Segment, label_colour, read_segments, segments_of

CT_LABELS = "totalseg/example_seg.nii.gz"


def _slicer_sample(name="Segmentation.seg.nrrd"):
    return slicerio.get_testdata_file(name)


def test_a_slicer_written_file_gives_its_names_colours_labels_layers_and_codes():
    expected = slicerio.read_segmentation(_slicer_sample(), skip_voxels=True)["segments"]
    ours = read_segments(_slicer_sample())
    assert len(ours) == len(expected) > 3
    for segment, theirs in zip(ours, expected):
        assert segment.name == theirs["name"] and segment.label == theirs["labelValue"]
        assert segment.layer == theirs["layer"]
        np.testing.assert_allclose(np.array(segment.colour) / 255, theirs["color"], atol=0.5 / 255)
        terms = theirs["terminology"]
        assert segment.category == Code(*terms["category"]) and segment.type == Code(*terms["type"])
    assert ours[0] == Segment(1, "ribs", (253, 232, 158), Code("SCT", "123037004", "Anatomical Structure"),
                              Code("SCT", "113197003", "Rib"), 0)


def test_overlapping_layers_are_read_with_their_layer():
    expected = slicerio.read_segmentation(_slicer_sample("SegmentationOverlapping.seg.nrrd"),
                                          skip_voxels=True)["segments"]
    ours = read_segments(_slicer_sample("SegmentationOverlapping.seg.nrrd"))
    assert [s.layer for s in ours] == [s["layer"] for s in expected] and max(s.layer for s in ours) > 0
    with pytest.raises(InputError, match="SegmentationOverlapping.seg.nrrd: a 3D Slicer segmentation with 2 "
                                         "layers .*export it as a labelmap volume"):
        io.read(_slicer_sample("SegmentationOverlapping.seg.nrrd"))


@pytest.fixture
def organs(shared_data):
    labels, geometry = io.read(shared_data / CT_LABELS)
    present = [int(v) for v in np.unique(labels) if v > 0]
    assert len(present) >= 3
    return labels, geometry, {present[0]: "spleen (from the reference)", present[1]: "kidney right"}


def test_our_seg_nrrd_reads_in_slicerio_with_names_colours_and_extents(organs, tmp_path):
    labels, geometry, names = organs
    path = io.write_labels(labels, tmp_path / "ct.seg.nrrd", geometry, names=names)
    theirs = slicerio.read_segmentation(str(path))
    ijk_labels = theirs["voxels"]                    # slicerio keeps NRRD's (i, j, k) = (x, y, z) order
    np.testing.assert_array_equal(ijk_labels.transpose(2, 1, 0), labels)
    present = [int(v) for v in np.unique(labels) if v > 0]
    assert [s["labelValue"] for s in theirs["segments"]] == present
    for s in theirs["segments"]:
        label = s["labelValue"]
        assert s["name"] == names.get(label, f"label {label}") and s["layer"] == 0
        np.testing.assert_allclose(s["color"], np.array(label_colour(label)) / 255, atol=1e-6)
        where = np.nonzero(ijk_labels == label)
        assert s["extent"] == [int(v) for a in where for v in (a.min(), a.max())]
        assert s["terminology"]["category"] == list(vars(TISSUE).values())
    np.testing.assert_allclose(theirs["ijkToLPS"][:3, 3], geometry.origin, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(theirs["ijkToLPS"][:3, :3], axis=0), geometry.spacing[::-1], atol=1e-5)


def test_our_seg_nrrd_round_trips_in_our_reader(organs, tmp_path):
    labels, geometry, names = organs
    names[250] = "an object that came out empty"
    path = io.write_labels(labels, tmp_path / "ct.seg.nrrd", geometry, names=names)
    segments = read_segments(path)
    assert segments == segments_of(labels, names)
    assert segments[-1] == Segment(250, "an object that came out empty", label_colour(250))
    header = path.read_bytes()[:20000].decode("latin-1")
    assert "Segment0_Extent:=" in header and "0 -1 0 -1 0 -1" in header   # Slicer's empty extent
    back, back_geometry = io.read(path)
    np.testing.assert_array_equal(back, labels)


def test_a_2d_label_map_is_refused_as_seg_nrrd(tmp_path):
    """Slicer's segmentations are 3D; its reader (and slicerio's) refuse a 2D .seg.nrrd."""
    with pytest.raises(InputError, match="image.seg.nrrd: a .seg.nrrd holds a 3D segmentation"):
        io.write_labels(np.ones((20, 30), np.uint8), tmp_path / "image.seg.nrrd")
    assert not list(tmp_path.iterdir())


def test_segment_extents_are_inclusive_x_y_z_ranges(tmp_path):
    labels = np.zeros((4, 20, 30), np.uint8)
    labels[1:3, 5:9, 10:25] = 3
    path = io.write_labels(labels, tmp_path / "small.seg.nrrd")
    assert slicerio.read_segmentation(str(path))["segments"][0]["extent"] == [10, 24, 5, 8, 1, 2]
    assert read_segments(path) == [Segment(3, "label 3", label_colour(3))]


def test_codes_parse_as_slicer_writes_them():
    assert Code.parse("SCT^64033007^Kidney") == Code("SCT", "64033007", "Kidney")
    assert str(Code("SCT", "64033007", "Kidney")) == "SCT^64033007^Kidney"
    with pytest.raises(InputError, match="'kidney': write it as scheme\\^value\\^meaning"):
        Code.parse("kidney")


def test_a_segment_with_an_unreadable_label_value_is_named(tmp_path):
    path = tmp_path / "bad.seg.nrrd"
    io.write_labels(np.ones((2, 3, 4), np.uint8), path)
    data = path.read_bytes().replace(b"Segment0_LabelValue:=1", b"Segment0_LabelValue:=x")
    path.write_bytes(data)
    with pytest.raises(InputError, match=f"{path}: segment 0 \\('Segment_1'\\) has an unreadable label value"):
        read_segments(path)
