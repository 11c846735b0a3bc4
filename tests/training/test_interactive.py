"""Interactive training (medsam.training.interactive): the click samplers, the samples that
start from a neighbouring slice's mask, real training steps on shared data, and a run of
``medsam train`` in interactive mode whose weights say they are interactive."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medsam.errors import InputError
from medsam.evaluation.interactive import next_click
from medsam.training.config import make_config
from medsam.training.interactive import (
    InteractiveDataset,
    InteractiveStep,
    perturb_mask,
    random_click,
    sample_click,
)
from medsam.training.manifest import read_manifest
from medsam.transforms import get_transform

from .conftest import write_description


def _square(h=64, w=64, y0=10, y1=40, x0=10, x1=40):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_the_challenge_rule_clicks_the_centre_of_the_largest_error_with_its_kind():
    gt = _square()
    pred = gt.copy()
    pred[10:40, 10:20] = False          # missed: a 30 x 10 strip
    pred[50:54, 50:54] = True           # spilled: a 4 x 4 speck
    (y, x), foreground = next_click(pred, gt)
    assert foreground and 10 <= x < 20 and 10 <= y < 40
    assert abs(x - 14.5) <= 1 and 14 <= y <= 35      # on the strip's middle line, 5 px from its border
    spill = np.zeros_like(gt)
    spill[5:60, 5:60] = True
    (y, x), foreground = next_click(spill, gt)
    assert not foreground and not gt[y, x] and spill[y, x]
    assert next_click(gt, gt) is None


def test_random_clicks_fall_in_the_error_and_say_which_side_they_are_on():
    gt = _square()
    pred = _square(x1=30)                       # misses columns 30..39
    pred[0:3, 0:3] = True                       # and spills in a corner
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(200):
        (y, x), foreground = random_click(pred, gt, rng)
        assert pred[y, x] != gt[y, x]
        assert foreground == bool(gt[y, x])
        kinds.add(foreground)
    assert kinds == {True, False}
    assert random_click(gt, gt, rng) is None and sample_click(gt, gt, rng) is None


def test_perturbed_masks_are_wrong_but_never_empty():
    gt = _square()
    rng = np.random.default_rng(1)
    outs = [perturb_mask(gt, rng) for _ in range(50)]
    assert all(o.any() for o in outs)
    assert sum(not np.array_equal(o, gt) for o in outs) >= 45
    overlap = [2 * (o & gt).sum() / (o.sum() + gt.sum()) for o in outs]
    assert 0.3 < np.median(overlap) < 0.99


def test_interactive_mode_needs_a_frozen_image_encoder():
    with pytest.raises(InputError, match="freeze_image_encoder"):
        make_config({"data": "d", "out": "o", "prompt_mode": "interactive"})
    with pytest.raises(InputError, match="prompt_mode"):
        make_config({"data": "d", "out": "o", "prompt_mode": "clicks"})
    with pytest.raises(InputError, match="slice_stride"):
        make_config({"data": "d", "out": "o", "slice_stride": 0})


@pytest.fixture(scope="module")
def prepared_sarcoma(shared_data, tmp_path_factory):
    """One soft-tissue sarcoma CT (STS_002; cases named by their folder), prepared."""
    from medsam.datasets.description import load_description
    from medsam.training.prepare import prepare

    folder = tmp_path_factory.mktemp("sarcoma")
    path = write_description(folder, shared_data, [{
        "name": "sts_ct", "modality": "ct", "intensity": {"window": "soft_tissue"},
        "images": "ibsi_sts/*/CT_image.nii.gz", "case_pattern": "^(STS_\\d+)/",
        "labels": "ibsi_sts/{case}/CT_mask.nii.gz", "cases": ["STS_002"], "min_pixels": 10,
        "min_voxels": 100}], split=[1.0, 0.0, 0.0])
    prepare(load_description(path), folder / "prepared", progress=False)
    return folder / "prepared"


def test_a_volume_object_starts_from_its_neighbouring_slice(prepared_sarcoma):
    rows = read_manifest(prepared_sarcoma)
    assert {r["case"] for r in rows} == {"STS_002"} and len(rows) > 5
    data = InteractiveDataset(prepared_sarcoma, rows, get_transform("litemedsam"), seed=0,
                              propagation_fraction=1.0)
    overlaps = []
    for index in range(len(rows)):
        sample = data[index]
        assert sample["has_prior"]
        prior, target = sample["prior"][0].numpy() > 0.5, sample["mask"][0].numpy() > 0.5
        overlaps.append(2 * (prior & target).sum() / (prior.sum() + target.sum()))
        box = sample["box"].numpy()
        ys, xs = np.nonzero(prior)
        assert box[0] <= xs.min() + 1 and box[2] >= xs.max() and box[1] <= ys.min() + 1 and box[3] >= ys.max()
    # the next slice's (or a perturbed) mask: like the object, never the object itself
    assert min(overlaps) > 0.1 and np.median(overlaps) > 0.6 and max(overlaps) < 1.0, overlaps
    plain = InteractiveDataset(prepared_sarcoma, rows, get_transform("litemedsam"), propagation_fraction=0.0)
    assert not plain[0]["has_prior"] and not plain[0]["prior"].any()


def test_real_training_steps_lower_the_loss(prepared_jsrt, lite_medsam_model):
    """Eight AdamW steps of the interactive rounds (box, 2 correction clicks with the mask fed
    back, half the objects starting from a perturbed mask) on four real chest X-ray
    objects, with LiteMedSAM's own encoder embeddings, lower the loss."""
    import copy

    sam = copy.deepcopy(lite_medsam_model).train()
    sam.image_encoder.requires_grad_(False)
    rows = [r for r in read_manifest(prepared_jsrt) if r["split"] == "train"][:4]
    data = InteractiveDataset(prepared_jsrt, rows, get_transform("litemedsam"), seed=0)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    with torch.no_grad():
        embeddings = sam.image_encoder(batch["image"])
    step = InteractiveStep(sam, rounds=2, click_first_fraction=0.0)
    params = [p for p in sam.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=3e-4)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = step(embeddings, batch["box"], batch["mask"], batch["prior"], batch["has_prior"], [0, 0])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_medsam_train_interactive_run_records_that_its_weights_are_interactive(prepared_jsrt, tmp_path, cli,
                                                                               lite_medsam_checkpoint):
    from medsam import load_model

    out = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({
        "data": str(prepared_jsrt), "out": str(out), "variant": "lite", "init": str(lite_medsam_checkpoint),
        "prompt_mode": "interactive", "freeze_image_encoder": True, "cache_embeddings": True,
        "click_rounds": 2, "batch_size": 2, "epochs": 2, "max_steps_per_epoch": 2, "max_steps": 3,
        "tune_max_items": 2, "progress": False}))
    result = cli("train", "--config", str(config))
    assert result.returncode == 0, result.stderr
    # max_steps: the second epoch ends after the run's third step, with its tuning and checkpoint
    assert [int(r.split(",")[2]) for r in (out / "steps.csv").read_text().split()[1:]] == [1, 2, 3]
    assert len((out / "log.csv").read_text().split()) == 3
    model = load_model(out / "last.pth")
    assert model.info.interactive and model.info.metadata["interactive"] is True
    assert not load_model(lite_medsam_checkpoint).info.interactive
    # only the prompt encoder and mask decoder moved
    base = load_model(lite_medsam_checkpoint).state_dict()
    trained = model.state_dict()
    assert all(torch.equal(base[k], trained[k]) for k in base if k.startswith("image_encoder."))
    assert any(not torch.equal(base[k], trained[k]) for k in base if k.startswith("mask_decoder."))


def test_embeddings_cached_on_disk_are_read_back_and_belong_to_their_encoder(tmp_path):
    from medsam.training.step import EmbeddingCache

    torch.manual_seed(0)
    encoder = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    images = torch.randn(3, 3, 8, 8)
    first = EmbeddingCache(encoder, tmp_path, "encoder-a")
    computed = first.get(["a.npz", "b.npz", "c.npz"], images)
    assert len(list(tmp_path.glob("*.npy"))) == 3 and not first.store
    with torch.no_grad():
        encoder.weight.add_(1.0)          # a different encoder from here on
    again = EmbeddingCache(encoder, tmp_path, "encoder-a").get(["c.npz", "a.npz"], images[[2, 0]])
    torch.testing.assert_close(again, computed[[2, 0]])      # read from disk, not computed
    other = EmbeddingCache(encoder, tmp_path, "encoder-b").get(["a.npz"], images[:1])
    assert not torch.allclose(other, computed[:1])           # another encoder's files are not its own
    assert len(list(tmp_path.glob("*.npy"))) == 4
