"""Two runs of a command started together into the same output, without --overwrite:
exactly one writes it, the other exits 2 saying the output exists, and the output is
whole (never a mix of the two, never silently replaced). Generated over the commands."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "medsam", *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _args(command, shared_data, table, out, checkpoint):
    masks = shared_data / "jsrt_scr_cxr/masks"
    return {
        "segment": ["segment", shared_data / "jsrt_scr_cxr/images/JPCLN001.png", "--box",
                    "100,100,900,900", "--checkpoint", checkpoint, "-o", out / "seg.png"],
        "evaluate": ["evaluate", "--pred", masks, "--gt", masks, "-o", out / "r.csv", "--quiet",
                     "--workers", "1"],
        "volume": ["volume", shared_data / "totalseg/example_seg.nii.gz", "-o", out / "v.csv"],
        "compare": ["compare", table, table, "--names", "a,b", "-o", out / "cmp"],
        "report": ["report", table, "-o", out / "rep"],
    }[command]


@pytest.mark.parametrize("command", ["segment", "evaluate", "volume", "compare", "report"])
def test_two_runs_into_one_output(shared_data, table, tmp_path, checkpoint, command):
    args = _args(command, shared_data, table, tmp_path / "out", checkpoint)
    runs = [start(*args), start(*args)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    _, _, err = next(r for r in results if r[0] == 2)
    errors = [line for line in err.splitlines() if line.startswith("medsam: error:")]
    assert len(errors) == 1 and "output exists" in errors[0], err
    left = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "out").rglob("*"))
    assert not [name for name in left if Path(name).name.startswith(".")], left   # no temporary files
    done = subprocess.run([sys.executable, "-m", "medsam", *map(str, args)], env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "output exists" in done.stderr


def test_a_batch_into_a_folder_in_use_names_the_other_run(shared_data, tmp_path, checkpoint):
    import shutil

    cases = tmp_path / "cases"
    cases.mkdir()
    for i in range(8):
        shutil.copy(shared_data / "jsrt_scr_cxr/images/JPCLN001.png", cases / f"c{i}.png")
    out = tmp_path / "segs"
    args = ["segment", cases, "-o", out, "--box", "100,100,900,900", "--checkpoint", checkpoint]
    first = start(*args)
    deadline = time.monotonic() + 120
    while not (out / ".medsam.lock").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / ".medsam.lock").exists(), first.communicate()
    second = subprocess.run([sys.executable, "-m", "medsam", *map(str, args)], env=ENV,
                            capture_output=True, text=True)
    code, _, err = first.wait(timeout=600), *first.communicate()
    assert code == 0, err
    assert second.returncode == 2, second.stderr
    assert f"{out}: in use by another medsam run (process {first.pid}" in second.stderr
    assert "segment" in second.stderr            # the other run's command
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"c{i}.png" for i in range(8)] + ["segment_objects.csv", "segment_times.csv"]   # no lock left
