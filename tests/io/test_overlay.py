import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError
from medsam.io import label_colour
from medsam.io.overlay import display_uint8, overlay_rgb


def test_overlay_png(shared_data, tmp_path):
    img, _ = io.read(shared_data / "jsrt_scr_cxr/images/JPCLN001.png")
    labels, _ = io.read(shared_data / "jsrt_scr_cxr/masks_labels/JPCLN001.png")
    out = io.write_overlay_png(img, labels, tmp_path / "overlay.png")
    rgb, _ = io.read(out)
    assert rgb.shape == img.shape + (3,) and rgb.dtype == np.uint8
    background = labels == 0
    np.testing.assert_array_equal(rgb[background][:, 0], img[background])   # untouched
    # each label's outline is drawn in its palette colour, its inside is tinted
    for label in (1, 2, 3):
        colour = np.array(label_colour(label))
        hits = np.all(rgb == colour, axis=-1) & (labels == label)
        assert hits.sum() > 100
    assert not np.array_equal(rgb[labels == 3], np.repeat(img[labels == 3, None], 3, -1))


def test_display_uint8_scales_16bit(shared_data):
    img, _ = io.read(shared_data / "stardist_nuclei/img2d.tif")
    d = display_uint8(img)
    assert d.shape == (512, 512, 3) and d.dtype == np.uint8 and d.max() == 255 and d.min() == 0


def test_overlay_errors(tmp_path):
    with pytest.raises(ValueError):
        overlay_rgb(np.zeros((4, 4)), np.zeros((5, 5), np.uint8))
    with pytest.raises(InputError):
        io.write_overlay_png(np.zeros((4, 4)), np.zeros((4, 4), np.uint8), tmp_path / "o.jpg")


def test_montage_slices_spread_over_the_mask():
    from medsam.io.overlay import montage_slices

    labels = np.zeros((40, 8, 8), np.uint8)
    labels[5:35, 2:4, 2:4] = 1
    assert montage_slices(labels, max_slices=40) == list(range(5, 35))
    picked = montage_slices(labels, max_slices=4)
    assert picked[0] == 5 and picked[-1] == 34 and len(picked) == 4
    assert montage_slices(np.zeros((3, 4, 4), np.uint8)) == []


def test_the_montage_caption_says_which_slices_are_left_out():
    """The kidney of the README: 19 slices hold it, 16 are shown; the caption names the rest."""
    from medsam.io.overlay import montage_caption, montage_slices

    labels = np.zeros((30, 4, 4), np.uint8)
    labels[0:19, 1, 1] = 1
    shown = montage_slices(labels)
    left = sorted(set(range(19)) - set(shown))
    assert len(shown) == 16 and len(left) == 3
    expected = f"16 of 19 slices holding labels shown; left out z={', '.join(map(str, left))}"
    assert montage_caption(labels, shown) == expected
    assert montage_caption(labels, montage_slices(labels, 40)) == "all 19 slices holding labels shown (z=0-18)"
    assert montage_caption(np.zeros((5, 2, 2)), [2]) == "no labels: slice z=2 of 5 shown"


def test_overlay_montage_orientation_and_tiles():
    from medsam.io.overlay import CAPTION_HEIGHT, overlay_montage_rgb, radiological_flips

    volume = np.zeros((3, 10, 20), np.int16)
    volume[:, 0, 0] = 1000                       # a bright top-left voxel
    labels = np.zeros_like(volume, dtype=np.uint8)
    labels[1, 4:6, 4:6] = 1
    labels[2, 4:6, 4:6] = 2
    rgb = overlay_montage_rgb(volume, labels, min_tile=40)   # 2 tiles, enlarged x2, under the caption
    top = CAPTION_HEIGHT
    assert rgb.shape == (top + 20, 80, 3) and rgb[:top].any()
    assert (rgb[top, 1] == 255).all() and (rgb[top, 41] == 255).all()  # the bright voxel, each tile
    # rows pointing anterior (LPS y negative) and columns pointing right are flipped
    flipped = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)
    assert radiological_flips(flipped) == (True, True)
    assert radiological_flips((1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)) == (False, False)
    rgb = overlay_montage_rgb(volume, labels, min_tile=40, direction=flipped)
    assert (rgb[top + 19, 38] == 255).all()      # now bottom-right of the first tile
    with pytest.raises(ValueError, match="same"):
        overlay_montage_rgb(volume, labels[:2])


def test_write_overlay_montage_of_real_ct(shared_data, tmp_path):
    from PIL import Image

    from medsam.io import read, write_overlay_montage
    from medsam.io.overlay import CAPTION_HEIGHT

    ct, geometry = read(shared_data / "totalseg" / "example_ct_sm.nii.gz")
    seg, _ = read(shared_data / "totalseg" / "example_seg.nii.gz")
    kidney = (seg == 2).astype(np.uint8)
    path = write_overlay_montage(ct, kidney, tmp_path / "kidney.png", direction=geometry.direction)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (CAPTION_HEIGHT + 4 * 202, 4 * 244, 3)   # 16 slices of 101 x 122, enlarged x2
    red = (picture[..., 0] > 200) & (picture[..., 1] < 60)
    assert red.any()                              # the kidney's outline is drawn
    # radiological view: the right kidney (label 2) is on the image's left half
    assert red[:, : picture.shape[1] // 8].sum() > red[:, picture.shape[1] // 8: picture.shape[1] // 4].sum()
    with pytest.raises(InputError):
        write_overlay_montage(ct, kidney, tmp_path / "kidney.png")   # exists: not replaced
