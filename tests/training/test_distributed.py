"""Two processes under torchrun (gloo, CPU) train the same weights as one process
with the same global batch."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medsam.training.config import make_config
from medsam.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]


def _settings(prepared, out, batch_size):
    # freeze_bn: the lite encoder's BatchNorm would otherwise see per-process batches
    # (SyncBatchNorm needs GPUs); everything else trains as usual.
    return dict(data=str(prepared), out=str(out), variant="lite", init="scratch", epochs=1,
                batch_size=batch_size, max_steps_per_epoch=2, tune_max_items=2,
                progress=False, device="cpu", seed=0, freeze_bn=True, lr=1e-4)


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(prepared_jsrt, tmp_path):
    train(make_config(_settings(prepared_jsrt, tmp_path / "one", batch_size=2)))
    s = _settings(prepared_jsrt, tmp_path / "two", batch_size=1)
    sets = [f"--set={k}={v}" for k, v in s.items() if k not in ("data", "out")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "medsam", "train", "--data", s["data"], "-o", s["out"], *sets],
        env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    one = torch.load(tmp_path / "one" / "last.pth", weights_only=True)
    two = torch.load(tmp_path / "two" / "last.pth", weights_only=True)
    from medsam.modeling import build_model

    torch.manual_seed(0)
    start = build_model("lite").state_dict()
    moved = max(float((one[k] - start[k]).abs().max()) for k in one)
    assert moved > 1e-5  # training did change the weights
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)
    with open(tmp_path / "one" / "steps.csv") as f1, open(tmp_path / "two" / "steps.csv") as f2:
        l1 = [float(r["loss"]) for r in csv.DictReader(f1)]
        l2 = [float(r["loss"]) for r in csv.DictReader(f2)]
    assert len(l1) == len(l2) == 2
    # rank 0 logs its own half of the global batch; only rank 0 wrote the run folder
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one").iterdir())
