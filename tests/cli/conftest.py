"""Fixtures of the command-line tests."""

import pytest


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A LiteMedSAM checkpoint with random weights (seed 0), for runs whose masks are only
    compared with each other or checked for shape and geometry."""
    import torch

    from medsam import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "lite_random.pth"
    torch.save(build_model("lite").state_dict(), path)
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A small medsam result table (6 cases of one task, method and label)."""
    import csv

    path = tmp_path_factory.mktemp("table") / "r.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([
            ["task", "method", "case", "label", "dsc", "nsd", "hd95", "gt_voxels", "pred_voxels",
             "gt_volume", "pred_volume", "volume_unit"],
            *[["t", "m", f"c{i}", "1", f"0.{80 + i}", "0.8", "1.0", "10", "10", "1.0", "1.1", "mL"]
              for i in range(6)]])
    return path
