"""Commands run against a real small file system: a tmpfs mounted in a private mount
namespace (``unshare -m``, as root), filled with a filler file so that only ``free_kib``
remain. Nothing is simulated: the writers meet the kernel's own ``ENOSPC``.

The mount lives only as long as the namespace, so the command, and the listing of what
it left on the small disk, run inside it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILLER = ".filler"


@dataclass
class DiskRun:
    returncode: int
    stdout: str
    stderr: str
    left: list[str]     # paths left on the small disk (relative; the filler not counted)


def require_small_disk(tmp_path: Path) -> None:
    """Skip when no private tmpfs can be mounted (not root, no unshare)."""
    probe = tmp_path / ".probe"
    probe.mkdir(exist_ok=True)
    done = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {probe}"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no private tmpfs can be mounted here: {done.stderr.strip()}")


def run_on_small_disk(mount: Path, args: list, free_kib: int = 0, size_kib: int = 256,
                      before: str = "", after: str = "", timeout: float = 600) -> DiskRun:
    """Mount a ``size_kib`` tmpfs at ``mount`` with ``free_kib`` left free (rounded to
    pages), run ``before`` (shell) and then ``python -m medsam ARGS`` with this checkout's
    sources, list what is left on the disk, and run ``after`` (shell; to copy files out
    before the mount goes)."""
    mount.mkdir(parents=True, exist_ok=True)
    logs = mount.parent / f".{mount.name}.logs"
    logs.mkdir(exist_ok=True)
    fill = max(size_kib - free_kib, 0) // 4
    medsam = " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "medsam", *args])
    script = (f"mount -t tmpfs -o size={size_kib}k tmpfs {shlex.quote(str(mount))} || exit 90\n"
              f"dd if=/dev/zero of={shlex.quote(str(mount / FILLER))} bs=4k count={fill} "
              f"2>/dev/null\n"
              f"{before}\n"
              f"{medsam} >{logs}/out 2>{logs}/err\n"
              f"echo $? >{logs}/rc\n"
              f"cd {shlex.quote(str(mount))} && find . -mindepth 1 ! -name {FILLER} -type f "
              f">{logs}/left\n"
              f"{after}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"),
                                                       *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode != 90, done.stderr
    read = lambda name: (logs / name).read_text()  # noqa: E731
    return DiskRun(int(read("rc")), read("out"), read("err"),
                   sorted(line[2:] for line in read("left").splitlines() if line))
