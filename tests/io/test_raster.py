import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from medsam import io
from medsam.errors import InputError
from medsam.io.geometry import Geometry


def test_png_label_roundtrip(same_place, shared_data, tmp_path):
    labels, g = io.read(shared_data / "jsrt_scr_cxr/masks_labels/JPCLN001.png")
    assert labels.shape == (1024, 1024) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert g.ndim == 2 and not g.spacing_known
    out = io.write_labels(labels, tmp_path / "m.png", g)
    back, bg = io.read(out)
    np.testing.assert_array_equal(back, labels)
    assert same_place(bg, g) and not bg.spacing_known


def test_16bit_grey(shared_data, tmp_path):
    img, g = io.read(shared_data / "stardist_nuclei/img2d.tif")
    assert img.dtype == np.uint16 and img.shape == (512, 512)
    img = img * 250                                  # use the 16-bit range
    for ext in (".png", ".tif"):
        back, _ = io.read(io.write(img, tmp_path / f"i{ext}", g))
        assert back.dtype == np.uint16
        np.testing.assert_array_equal(back, img)
    labels, _ = io.read(shared_data / "stardist_nuclei/mask2d.tif")
    assert len(np.unique(labels)) == 126            # 125 nucleus instances + background
    many = labels.astype(np.uint16) * 300           # ids above 255 -> 16-bit PNG
    np.testing.assert_array_equal(io.read(io.write_labels(many, tmp_path / "l.png"))[0], many)


def test_multipage_tiff_is_a_volume(shared_data):
    vol, g = io.read(shared_data / "stardist_nuclei/img3d.tif")
    assert vol.shape == (31, 61, 57) and vol.dtype == np.uint16 and g.ndim == 3
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "stardist_nuclei/img3d.tif")))
    np.testing.assert_array_equal(vol, ref)


def test_jpeg_rgb_and_bmp(shared_data, tmp_path):
    img, g = io.read(shared_data / "kvasir_seg_subset/images/cju0qoxqj9q6s0835b43399p4.jpg")
    assert img.shape == (1070, 1348, 3) and img.dtype == np.uint8 and g.ndim == 2
    back, _ = io.read(io.write(img, tmp_path / "copy.bmp", g))
    np.testing.assert_array_equal(back, img)
    with pytest.raises(InputError, match="lossy"):
        io.write(img, tmp_path / "copy.jpg", g)
    assert not (tmp_path / "copy.jpg").exists()


def test_rgba_alpha_dropped_and_palette(shared_data, tmp_path):
    rgb, _ = io.read(shared_data / "busi_breast_us/images/10018.png")
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 128, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    back, g = io.read(tmp_path / "a.png")
    np.testing.assert_array_equal(back, rgb)
    # DRIVE's palette GIF: near-grey palette (4,2,4)/(252,254,252) -> greyscale uint8
    mask, _ = io.read(shared_data / "drive_fundus/test/2nd_manual/01_manual2.gif")
    assert mask.shape == (584, 565) and mask.dtype == np.uint8
    assert len(np.unique(mask)) == 2 and mask.max() > 127 and mask.min() < 10
    # a coloured palette stays RGB
    assert np.ptp(rgb.astype(int), axis=-1).max() == 0   # BUSI: grey stored as RGB
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "g.gif")
    assert io.read(tmp_path / "g.gif")[0].shape == rgb.shape[:2]
    colour, _ = io.read(shared_data / "kvasir_seg_subset/images/cju0qoxqj9q6s0835b43399p4.jpg")
    Image.fromarray(colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "p.gif")
    col, _ = io.read(tmp_path / "p.gif")
    assert col.shape == colour.shape and col.dtype == np.uint8


def test_16bit_rgb_png_through_sitk(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65535, size=(20, 30, 3), dtype=np.uint16)
    sitk.WriteImage(sitk.GetImageFromArray(arr, isVector=True), str(tmp_path / "c16.png"))
    back, g = io.read(tmp_path / "c16.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, arr)
    assert g.ndim == 2


def test_pixel_size_roundtrip(shared_data, tmp_path):
    # HC18 gives the pixel size in a CSV; once set, PNG stores it (pHYs) and reads it back
    img, g = io.read(shared_data / "hc18_fetal_us/images/000_HC.png")
    g = g.with_spacing((0.069135804, 0.069135804))
    back, bg = io.read(io.write(img, tmp_path / "us.png", g))
    assert bg.spacing_known
    np.testing.assert_allclose(bg.spacing, g.spacing, rtol=1e-4)
    back, bg = io.read(io.write(img, tmp_path / "us.tif", g))
    np.testing.assert_allclose(bg.spacing, g.spacing, rtol=1e-6)


def test_raster_write_errors(tmp_path):
    with pytest.raises(InputError, match="float"):
        io.write(np.zeros((4, 4), np.float32), tmp_path / "f.png")
    with pytest.raises(InputError, match="origin"):
        io.write(np.zeros((4, 4), np.uint8), tmp_path / "o.png", Geometry((1, 1), origin=(5, 5)))
    with pytest.raises(InputError, match="do not fit"):
        io.write(np.full((4, 4), 70000, np.int32), tmp_path / "big.png")
    with pytest.raises(InputError, match="2D"):
        io.write(np.zeros((2, 4, 4), np.uint8), tmp_path / "vol.png")
    assert list(tmp_path.iterdir()) == []      # nothing left behind


def test_corrupt_raster(tmp_path, shared_data):
    data = (shared_data / "jsrt_scr_cxr/images/JPCLN001.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:2000])
    (tmp_path / "text.jpg").write_text("hello")
    for name in ("cut.png", "text.jpg"):
        with pytest.raises(InputError) as err:
            io.read(tmp_path / name)
        assert name in str(err.value)
