import numpy as np
import pytest

from medsam import io
from medsam.errors import InputError
from medsam.io.overlay import PALETTE, display_uint8, overlay_rgb


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
        colour = np.array(PALETTE[label - 1])
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
