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
