"""`medsam train` killed with SIGKILL at several points, then resumed: the result equals
an uninterrupted run's (weights bit for bit, the logs row for row). A damaged resume
file and a disk that fills during a checkpoint leave the previous checkpoint usable.

The runs train the box-cropped U-Net (16 MiB of weights, 32 MiB of resume state), the
smallest model the trainer takes: the loop, its checkpoints and its resume are the same
code for every variant (tests/training/test_trainer.py resumes a SAM model in-process)."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT
from tests.small_disk import require_small_disk, run_on_small_disk

pytestmark = pytest.mark.slow

# one thread: CPU kernels are bit-reproducible with one thread only
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SETTINGS = ["--variant", "unet", "--init", "scratch", "--epochs", "2", "--batch-size", "1",
            "--set", "max_steps_per_epoch=2", "--set", "tune_max_items=1", "--set", "save_every=1",
            "--set", "seed=0", "--device", "cpu", "--no-progress"]


def command(data, out, *extra):
    return [sys.executable, "-m", "medsam", "train", "--data", str(data), "-o", str(out),
            *SETTINGS, *extra]


def rows(path, *columns):
    with open(path, newline="") as f:
        return [tuple(r[c] for c in columns) for r in csv.DictReader(f)]


def same_run(a, b):
    wa = torch.load(a / "last.pth", weights_only=True)
    wb = torch.load(b / "last.pth", weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert rows(a / "steps.csv", "epoch", "step", "global_step", "loss", "lr") == \
        rows(b / "steps.csv", "epoch", "step", "global_step", "loss", "lr")
    assert rows(a / "log.csv", "epoch", "global_step", "train_loss", "tune_dsc") == \
        rows(b / "log.csv", "epoch", "global_step", "train_loss", "tune_dsc")


@pytest.fixture(scope="module")
def straight(prepared_jsrt, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    done = subprocess.run(command(prepared_jsrt, out), env=ENV, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    return out


def _steps_logged(out):
    try:
        return len(rows(out / "steps.csv", "step"))
    except (OSError, KeyError):
        return 0


#: where one run is killed, in order: each point is met by the run resumed after the kill
#: before it (a resume starts again from the last committed checkpoint, or from nothing)
KILL_POINTS = {
    "before the first checkpoint": lambda out: (out / "config.json").exists(),
    "while a checkpoint is written": lambda out: any(p.name.startswith(".resume.pt.")
                                                     for p in out.glob(".*")),
    "mid-epoch, after a step checkpoint": lambda out: (out / "resume.pt").exists()
    and not (out / "log.csv").exists(),
    "in the second epoch": lambda out: _steps_logged(out) >= 3,
}


def _kill_at(point, process, out):
    deadline = time.monotonic() + 600
    while not KILL_POINTS[point](out):
        assert process.poll() is None, f"the run ended before {point}: {process.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_at_every_point_then_resumed_equals_an_uninterrupted_run(prepared_jsrt, tmp_path, straight):
    """One run killed at each point in turn (the first start, then three resumes), and a last
    resume that ends it: each resume takes over the killed run's lock and leftovers."""
    out = tmp_path / "run"
    for i, point in enumerate(KILL_POINTS):
        process = subprocess.Popen(command(prepared_jsrt, out, *(["--resume"] if i else [])), env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _kill_at(point, process, out)
        assert (out / ".medsam.lock").exists(), point         # left by the killed run ...
    done = subprocess.run(command(prepared_jsrt, out, "--resume"), env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr         # ... and taken over: its process is gone
    same_run(straight, out)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]   # no temporary files, no lock


def test_a_truncated_resume_file_is_refused_and_nothing_changes(prepared_jsrt, tmp_path, straight):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(straight, out)
    data = (out / "resume.pt").read_bytes()
    (out / "resume.pt").write_bytes(data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    done = subprocess.run(command(prepared_jsrt, out, "--resume", "--epochs", "3"), env=ENV,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("medsam: error:")]
    assert len(errors) == 1 and f"{out / 'resume.pt'}: cannot read resume state" in errors[0], done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_disk_that_fills_during_a_checkpoint_keeps_the_previous_one(prepared_jsrt, tmp_path):
    """80 MiB: room for the first step checkpoint (last.pth 16 MiB + resume.pt 32 MiB),
    not for the next pair beside it: the pair on disk stays the first one, whole and
    matching (the weights and the resume state are committed together)."""
    require_small_disk(tmp_path)
    disk = tmp_path / "disk"
    saved = tmp_path / "saved"
    run = run_on_small_disk(disk, command(prepared_jsrt, disk / "run")[3:], size_kib=80 * 1024,
                            free_kib=80 * 1024, after=f"cp -r {disk / 'run'} {saved}")
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("medsam: error:")]
    assert len(errors) == 1 and "no space left on device" in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    state = torch.load(saved / "resume.pt", weights_only=True)   # whole, and the one before
    last = torch.load(saved / "last.pth", weights_only=True)
    assert state["global_step"] >= 1
    assert all(torch.equal(last[k], state["model"][k]) for k in state["model"])
    assert not [p for p in run.left if p.rsplit("/", 1)[-1].startswith(".")], run.left
