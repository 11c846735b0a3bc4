"""The box-cropped U-Net: it crops the box, and its logits land back in the box."""

import pytest
import torch
import torch.nn.functional as F

from medsam.errors import InputError
from medsam.modeling.unet import OUTSIDE_LOGIT, BoxUNet, UNetConfig, _crop_grid, _paste_grid, build_unet


def test_crop_then_paste_of_the_whole_frame_is_the_identity():
    image = torch.rand(1, 1, 256, 256)
    whole = torch.tensor([[0.0, 0.0, 256.0, 256.0]])
    crop = F.grid_sample(image, _crop_grid(whole, 256, 256), align_corners=False)
    grid, inside = _paste_grid(whole, 256)
    back = F.grid_sample(crop, grid, align_corners=False, padding_mode="border")
    assert torch.allclose(crop, image, atol=1e-6) and torch.allclose(back, image, atol=1e-6)
    assert bool(inside.all())


def test_crop_takes_the_box_region():
    image = torch.zeros(1, 1, 256, 256)
    image[..., 40:80, 100:180] = 1.0  # rows 40-79, columns 100-179
    crop = F.grid_sample(image, _crop_grid(torch.tensor([[100.0, 40.0, 180.0, 80.0]]), 64, 256),
                         align_corners=False)
    assert float(crop[..., 1:-1, 1:-1].min()) == 1.0  # bilinear: the edge samples mix in the outside
    assert float(crop.min()) > 0.5


class _Copy(torch.nn.Module):
    """Stands in for the network to test the geometry: logits = first channel - 0.5."""

    def forward(self, x):
        return x[:, :1] - 0.5


def test_logits_are_in_the_box_and_outside_logit_elsewhere():
    model = BoxUNet(UNetConfig(crop_size=64, filters=(8, 16, 32), margin=0.0))
    model.net = _Copy()
    images = torch.zeros(1, 3, 256, 256)
    images[:, :, 50:90, 30:70] = 1.0
    logits = model(images, torch.tensor([[30.0, 50.0, 69.0, 89.0]]))  # inclusive pixel box
    assert logits.shape == (1, 1, 256, 256)
    inside = logits[0, 0, 50:90, 30:70]
    assert float(inside.min()) > 0  # the whole object is foreground, edges included
    assert torch.allclose(inside[1:-1, 1:-1], torch.tensor(0.5))
    outside = torch.ones(256, 256, dtype=torch.bool)
    outside[49:91, 29:71] = False
    assert torch.all(logits[0, 0][outside] == OUTSIDE_LOGIT)


def test_real_network_runs_and_learns_gradients():
    model = build_unet(UNetConfig(crop_size=64, filters=(8, 16, 32)))
    images = torch.rand(2, 3, 256, 256)
    logits = model.train()(images, torch.tensor([[10.0, 20.0, 100.0, 90.0], [0.0, 0.0, 255.0, 255.0]]))
    logits.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.variant == "unet" and model.image_size == 256


@pytest.mark.parametrize("bad", [dict(crop_size=100, filters=(8, 16, 32, 64)), dict(margin=1.5),
                                 dict(filters=(8, 16))])
def test_bad_configs_are_refused(bad):
    with pytest.raises(InputError):
        UNetConfig(**bad)


def test_config_record_round_trips():
    config = UNetConfig(crop_size=96, filters=(8, 16, 32), margin=0.2)
    assert UNetConfig.from_record(config.record()) == config
    assert UNetConfig.from_record(None) == UNetConfig()
