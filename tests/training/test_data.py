import numpy as np
import torch

from medsam.training.data import EpochBatchSampler, PreparedDataset, low_res_target, perturb_box
from medsam.training.manifest import read_manifest
from medsam.transforms import get_transform


def test_ranks_together_see_what_one_process_sees():
    one = list(EpochBatchSampler(50, batch_size=4, seed=3, epoch=2, accumulation=2))
    ranks = [list(EpochBatchSampler(50, 2, 3, 2, rank=r, world_size=2, accumulation=2))
             for r in range(2)]
    assert len(one) == 12 and all(len(r) == 12 for r in ranks)  # 50 // 8 = 6 steps x 2
    for k in range(12):
        assert sorted(one[k]) == sorted(ranks[0][k] + ranks[1][k])
    flat = [i for b in one for i in b]
    assert len(set(flat)) == len(flat)
    other_epoch = list(EpochBatchSampler(50, 4, 3, 3, accumulation=2))
    assert other_epoch != one
    resumed = list(EpochBatchSampler(50, 4, 3, 2, accumulation=2, start=4))
    assert resumed == one[4:]


def test_perturbation_grows_each_side_by_at_most_shift():
    rng = np.random.default_rng(0)
    box = np.array([50.0, 60.0, 100.0, 120.0])
    grown = np.array([perturb_box(box, 5, (256, 256), rng) for _ in range(200)])
    delta = np.abs(grown - box)
    assert delta.max() == 5 and delta.min() == 0
    assert (grown[:, :2] <= box[:2]).all() and (grown[:, 2:] >= box[2:]).all()
    assert perturb_box(np.array([0.0, 0, 256, 256]), 5, (256, 256), rng).tolist() == [0, 0, 256, 256]


def test_low_res_target_follows_the_image_padding():
    mask = np.zeros((100, 200), bool)
    mask[:, 100:] = True                        # right half
    t = low_res_target(mask, input_size=(128, 256), image_size=256)
    assert t.shape == (256, 256)
    assert t[:128, 128:].all() and not t[:128, :128].any() and not t[128:].any()
    stretched = low_res_target(mask, input_size=(1024, 1024), image_size=1024)
    assert stretched[:, 128:].all() and not stretched[:, :128].any()


def test_samples_are_preprocessed_like_inference(prepared_jsrt):
    rows = [r for r in read_manifest(prepared_jsrt) if r["split"] == "train"][:3]
    transform = get_transform("litemedsam")
    ds = PreparedDataset(prepared_jsrt, rows, transform, box_shift=20, seed=1)
    ds.set_epoch(4)
    s = ds[2]
    assert s["image"].shape == (3, 256, 256) and s["mask"].shape == (1, 256, 256)
    with np.load(prepared_jsrt / rows[2]["file"]) as data:
        grey = data["image"]
    expected = transform.prepare_image(np.repeat(grey[:, :, None], 3, axis=2)).tensor
    assert torch.equal(s["image"], torch.from_numpy(expected))
    exact = np.floor(np.array([rows[2][k] for k in ("x0", "y0", "x1", "y1")]) * 256 / 1024)
    diff = (s["box"].numpy() - exact) * np.array([-1, -1, 1, 1])
    assert (diff >= 0).all() and (diff <= 5).all()        # 20 px at 1024 = 5 px at 256
    assert torch.equal(ds[2]["box"], s["box"])            # same epoch, same draw
    ds.set_epoch(5)
    boxes = {tuple(ds[i]["box"].tolist()) for i in range(3)}
    assert len(boxes) == 3
