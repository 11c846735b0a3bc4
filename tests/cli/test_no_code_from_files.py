"""Files a user opens never run code: checkpoints, resume states, embeddings and npz masks
holding pickled objects are refused with one line, and the planted code never runs."""

import os
import pickle

import numpy as np
import pytest
import torch


class Planted:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "code_ran"
    yield path
    assert not path.exists(), "code from a file was executed"


def test_segment_checkpoint_holding_code(cli, shared_data, tmp_path, marker):
    evil = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": torch.zeros(1), "hook": Planted(marker)}, evil)
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "1,1,50,50",
            "--checkpoint", evil, "-o", tmp_path / "out.png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"{evil}: holds a Python object" in r.stderr and "not loaded for safety" in r.stderr
    assert not (tmp_path / "out.png").exists()


def test_plain_pickle_checkpoint(cli, shared_data, tmp_path, marker):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Planted(marker), protocol=2))
    r = cli("segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box", "1,1,50,50",
            "--checkpoint", evil, "-o", tmp_path / "out.png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(evil) in r.stderr


def test_npz_masks_holding_objects(cli, tmp_path, marker):
    preds, refs = tmp_path / "pred", tmp_path / "ref"
    preds.mkdir(), refs.mkdir()
    np.savez(preds / "a.npz", segs=np.array([Planted(marker)], dtype=object))
    np.savez(refs / "a.npz", segs=np.ones((4, 4), np.uint8))
    r = cli("evaluate", "--pred", preds, "--gt", refs, "-o", tmp_path / "res.csv", "--quiet",
            "--workers", "1")
    assert r.returncode != 0 and str(preds / "a.npz") in r.stderr
    r = cli("volume", preds / "a.npz")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(preds / "a.npz") in r.stderr


def test_embedding_file_holding_code(tmp_path, marker):
    from medsam import build_model
    from medsam.errors import MedSAMError
    from medsam.predictor import MedSAMPredictor

    evil = tmp_path / "embedding.pt"
    torch.save({"embedding": torch.zeros(1, 256, 64, 64), "meta": Planted(marker)}, evil)
    predictor = MedSAMPredictor(build_model("lite"))
    with pytest.raises((MedSAMError, ValueError)):
        predictor.load_embedding(evil)
