import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError

RECIST = "medsam2_recist/CT_Lesion_000001_02_01_008-023.npz"
MAMMO = "medficientsam_mammo/2DBox_Mammography_demo.npz"


def test_read_3d_case(shared_data):
    case = io.read_npz(shared_data / RECIST)
    raw = np.load(shared_data / RECIST)
    assert case.is_3d and case.image.shape == (16, 512, 512)
    assert case.geometry.spacing == pytest.approx(tuple(raw["spacing"][::-1]))  # (z, y, x)
    assert case.geometry.spacing[0] == 5.0
    assert case.geometry.direction == pytest.approx(tuple(raw["direction"]))
    assert case.boxes is None and case.gts.shape == case.image.shape
    img, g = io.read(shared_data / RECIST)
    np.testing.assert_array_equal(img, raw["imgs"])
    assert g == case.geometry


def test_read_2d_case_with_boxes(shared_data):
    case = io.read_npz(shared_data / MAMMO)
    assert not case.is_3d and case.image.shape == (2604, 1726, 3)
    assert case.boxes.shape == (4, 4)
    np.testing.assert_array_equal(case.boxes[0], [131, 1532, 475, 1895])
    assert not case.geometry.spacing_known


def test_segs_roundtrip(same_place, shared_data, tmp_path):
    case = io.read_npz(shared_data / RECIST)
    out = io.write_labels(case.gts, tmp_path / "seg.npz", case.geometry)
    raw = np.load(out)
    assert "segs" in raw.files and raw["segs"].dtype == np.uint8
    np.testing.assert_allclose(raw["spacing"], np.load(shared_data / RECIST)["spacing"])
    segs, g = io.read(out)
    np.testing.assert_array_equal(segs, case.gts)
    assert same_place(g, case.geometry)
    # a 2D output holds just `segs` (the pixel size is unknown)
    seg2d = np.zeros((2604, 1726), np.uint8)
    seg2d[1532:1896, 131:476] = 1
    out2 = io.write_labels(seg2d, tmp_path / "seg2d.npz", io.read_npz(shared_data / MAMMO).geometry)
    assert np.load(out2).files == ["segs"]
    np.testing.assert_array_equal(io.read(out2)[0], seg2d)


def test_3d_boxes_decide_dimension(tmp_path):
    imgs = np.zeros((5, 8, 3), np.uint8)   # 3 columns: looks like RGB, but boxes are 3D
    np.savez(tmp_path / "c.npz", imgs=imgs, boxes=np.array([[0, 0, 1, 2, 2, 3]]), spacing=[1, 1, 2.5])
    case = io.read_npz(tmp_path / "c.npz")
    assert case.is_3d and case.geometry.spacing == (2.5, 1.0, 1.0)


@pytest.mark.parametrize("content,message", [
    (dict(other=np.zeros(3)), "none of the keys"),
    (dict(imgs=np.zeros((4, 4, 3), np.uint8), boxes=np.zeros((2, 5))), "'boxes' has shape"),
    (dict(imgs=np.zeros((4, 4, 4, 4), np.uint8)), "expected"),
    (dict(imgs=np.zeros((3, 4, 4), np.uint8), spacing=[1, 1, 1, 1]), "spacing"),
    (dict(imgs=np.zeros((3, 4, 4), np.uint8), spacing=[1, 1, 1], direction=np.ones(9)), "geometry"),
])
def test_bad_npz(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(InputError, match=message) as err:
        io.read_npz(path)
    assert "bad.npz" in str(err.value)


def test_not_an_npz(tmp_path):
    (tmp_path / "x.npz").write_text("nope")
    with pytest.raises(InputError, match="x.npz: cannot read npz"):
        io.read(tmp_path / "x.npz")
