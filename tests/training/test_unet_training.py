"""`medsam train` with the ``unet`` variant: the same loop, a checkpoint every tool loads."""

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.training.config import make_config
from medsam.training.trainer import train


def settings(prepared, out, **extra):
    base = dict(data=str(prepared), out=str(out), variant="unet", init="scratch", epochs=1,
                batch_size=4, max_steps_per_epoch=2, tune_max_items=4, progress=False,
                device="cpu", seed=0, lr=1e-3)
    return make_config({**base, **extra})


@pytest.fixture(scope="module")
def unet_run(prepared_jsrt, tmp_path_factory):
    """A U-Net trained on JSRT's training split for 4 epochs of 5 steps (batch 8): a
    number of steps, not what a time budget happens to allow on a loaded machine
    (measured: tuning DSC 0.77, 0.78, 0.84, 0.89 after each epoch; about 15 s here)."""
    out = tmp_path_factory.mktemp("unet") / "run"
    return train(settings(prepared_jsrt, out, epochs=4, max_steps_per_epoch=None, batch_size=8))


@pytest.mark.slow
def test_the_unet_learns_lungs_and_heart_from_their_boxes(unet_run):
    assert not unet_run.out_of_time
    assert [h["global_step"] for h in unet_run.history] == [5, 10, 15, 20]
    assert unet_run.best_dsc is not None and unet_run.best_dsc > 0.8


def test_time_budget_ends_the_run(prepared_jsrt, tmp_path):
    """The budget ends the run after the step that passes it, whatever that step's number
    (no accuracy claim: how far a run gets in 1.2 s depends on the machine and its load)."""
    result = train(settings(prepared_jsrt, tmp_path / "budget", epochs=1000, max_steps_per_epoch=None,
                            max_minutes=0.02, batch_size=8))
    assert result.out_of_time
    assert 1 <= len(result.history) < 1000
    assert (result.run_dir / "last.pth").is_file()


@pytest.mark.slow
def test_unet_checkpoint_loads_and_segments_with_the_cli(unet_run, prepared_jsrt, shared_data, tmp_path, cli):
    from medsam import load_model
    from medsam.io import read
    from medsam.metrics import dice
    from medsam.modeling.unet import BoxUNet

    model = load_model(unet_run.run_dir / "best.pth")
    assert isinstance(model, BoxUNet) and model.info.transform == "litemedsam"
    assert model.info.metadata["trained_on"] == ["jsrt"] and model.info.metadata["unet"]["crop_size"] == 128
    from medsam.segmentation import mask_to_box
    from medsam.training.manifest import read_manifest

    case = next(r["case"] for r in read_manifest(prepared_jsrt) if r["split"] == "validation")
    reference, _ = read(shared_data / f"jsrt_scr_cxr/masks_labels/{case}.png")
    box = ",".join(str(int(v)) for v in mask_to_box(reference == 3))
    out = tmp_path / "heart.png"
    result = cli("segment", str(shared_data / f"jsrt_scr_cxr/images/{case}.png"), "--checkpoint",
                 str(unet_run.run_dir / "best.pth"), "--box", box, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "(unet;" in result.stderr
    mask, _ = read(out)
    assert mask.shape == reference.shape[:2] and mask.any()
    assert dice(mask > 0, reference == 3) > 0.7


def test_unet_settings_that_do_not_apply_are_refused(prepared_jsrt, tmp_path):
    with pytest.raises(InputError, match="are for SAM models; 'unet' has no separate image encoder"):
        settings(prepared_jsrt, tmp_path / "r", freeze_image_encoder=True)
    with pytest.raises(InputError, match="max_minutes"):
        settings(prepared_jsrt, tmp_path / "r", max_minutes=0)


def test_a_sam_checkpoint_is_not_a_unet_start(prepared_jsrt, tmp_path, lite_medsam_checkpoint):
    from medsam.errors import CheckpointError

    with pytest.raises(CheckpointError, match="unet"):
        train(settings(prepared_jsrt, tmp_path / "r", init=str(lite_medsam_checkpoint)))


def test_unet_box_covers_the_object_boxes_of_the_data(prepared_jsrt):
    """The samples the U-Net trains on are the SAM samples: same rows, same boxes."""
    from medsam.modeling import model_kind
    from medsam.training.data import PreparedDataset
    from medsam.training.manifest import read_manifest
    from medsam.transforms import get_transform

    rows = [r for r in read_manifest(prepared_jsrt) if r["split"] == "train"][:3]
    data = PreparedDataset(prepared_jsrt, rows, get_transform(model_kind("unet").transform), perturb=False)
    for i in range(3):
        sample = data[i]
        assert sample["image"].shape == (3, 256, 256) and sample["mask"].shape == (1, 256, 256)
        ys, xs = np.nonzero(sample["mask"][0].numpy())
        x0, y0, x1, y1 = sample["box"].tolist()
        assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
