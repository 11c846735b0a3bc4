import os
import stat
import sys

import pytest

from medsam.errors import InputError
from medsam.fileutil import atomic_path, check_writable_output


def test_atomic_path_renames_on_success_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "mask.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert list(target.parent.iterdir()) == [target]


def test_writes_leave_the_umask_of_other_threads_alone(tmp_path):
    """The web server writes from several threads: a file another thread creates while
    one of ours is written gets the process's usual mode, never 0666."""
    import threading

    mask = os.umask(0o022)
    os.umask(mask)
    stop = threading.Event()
    theirs: list = []

    def other_thread():
        while not stop.is_set() and len(theirs) < 5000:
            path = tmp_path / "theirs" / f"{len(theirs)}.txt"
            with open(path, "w"):
                pass
            theirs.append(path)

    (tmp_path / "theirs").mkdir()
    worker = threading.Thread(target=other_thread)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)    # switch threads as often as possible
    worker.start()
    try:
        for i in range(200):
            with atomic_path(tmp_path / "ours" / f"{i}.bin") as tmp:
                tmp.write_bytes(b"x")
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(interval)
    assert theirs and {stat.S_IMODE(p.stat().st_mode) for p in theirs} == {0o666 & ~mask}
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "ours").iterdir()} == {0o666 & ~mask}


def test_atomic_path_leaves_nothing_on_error_and_keeps_old_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_no_overwrite_without_permission(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(InputError, match="out.png: output exists; pass overwrite=True") as info:
        check_writable_output(target)
    assert info.value.option == "overwrite" and "--" not in str(info.value)  # no CLI flag
    with pytest.raises(InputError, match="overwrite=True"):
        with atomic_path(target, overwrite=False):
            pass
    assert target.read_bytes() == b"old"


# --- the write path: checked at the rename, committed together, full disk, locks ---------

def _writers():
    import numpy as np

    from medsam import io
    from medsam.fileutil import write_csv
    from medsam.io import write_overlay_png

    volume = np.zeros((3, 8, 8), np.uint8)
    volume[1, 2:5, 2:5] = 1
    image = np.zeros((8, 8), np.uint8)
    geometry = io.Geometry(spacing=(2.0, 1.0, 1.0))
    writers = {ext: (lambda p, ext=ext: io.write(volume, p, geometry))
               for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".npz")}
    writers[".png"] = lambda p: io.write(image, p)
    writers["overlay.png"] = lambda p: write_overlay_png(image, image, p)
    writers[".csv"] = lambda p: write_csv(p, ["a"], [[1]])
    return writers


@pytest.mark.parametrize("kind", list(_writers()))
def test_a_file_written_meanwhile_by_another_run_is_kept(tmp_path, kind):
    """Without overwrite the rename refuses a file that appeared during the work: the other
    run's file is kept, and nothing of ours is left."""
    from medsam.fileutil import committed_together

    target = tmp_path / ("out" + (kind if kind.startswith(".") else ".png"))
    with pytest.raises(InputError, match="output exists .written while this run worked"):
        with committed_together(overwrite=False):
            _writers()[kind](target)
            target.write_bytes(b"the other run")
    assert target.read_bytes() == b"the other run"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_outputs_committed_together_keep_the_old_ones_on_failure(tmp_path):
    from medsam.fileutil import committed_together

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    with pytest.raises(RuntimeError):
        with committed_together():
            with atomic_path(a) as tmp:
                tmp.write_text("new a")
            assert a.read_text() == "old a"       # nothing renamed before the end
            raise RuntimeError("the overlay failed")
    assert a.read_text() == "old a" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with committed_together():
        for path in (a, b):
            with atomic_path(path) as tmp:
                tmp.write_text("new")
    assert a.read_text() == b.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_failed_rename_puts_back_what_was_replaced(tmp_path):
    """The second rename of a commit fails (its name is taken by a folder): the first
    output is rolled back to the file it replaced."""
    from medsam.errors import OutputError
    from medsam.fileutil import committed_together

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    with pytest.raises(OutputError, match="b.txt: cannot be written"):
        with committed_together():
            with atomic_path(a) as tmp:
                tmp.write_text("new a")
            with atomic_path(b) as tmp:
                tmp.write_text("new b")
            b.mkdir()
            (b / "inside").write_text("x")    # os.replace cannot put a file over this folder
    assert a.read_text() == "old a" and (b / "inside").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_a_file_system_that_refuses_files_is_found_before_work():
    with pytest.raises(InputError, match=r"/proc/a.nii.gz: cannot be written: /proc refuses new files"):
        check_writable_output("/proc/a.nii.gz")


def test_an_os_error_while_writing_names_the_output_not_the_temporary_file(tmp_path):
    from medsam.errors import OutputError
    from medsam.fileutil import atomic_folder

    with pytest.raises(OutputError) as info:
        with atomic_folder(tmp_path / "report") as folder:
            with atomic_path(folder / "table.csv") as tmp:
                raise OSError(28, "No space left on device", str(tmp))
    assert str(info.value) == f"{tmp_path / 'report' / 'table.csv'}: cannot be written: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_output_lock_refuses_a_second_run_and_takes_over_a_dead_ones(tmp_path):
    import json
    import subprocess
    import sys

    from medsam.fileutil import LOCK_NAME, output_lock

    folder = tmp_path / "segs"
    with output_lock(folder):
        with pytest.raises(InputError, match=rf"{folder}: in use by another medsam run \(process {os.getpid()}"):
            with output_lock(folder):
                pass
    assert not folder.exists()      # made by the lock, left empty: removed
    folder.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    (folder / LOCK_NAME).write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                                               "started": 0, "command": "medsam segment (killed)"}))
    with output_lock(folder):       # the process that left it is gone
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert list(folder.iterdir()) == []


def test_a_killed_runs_temporary_folder_goes_with_the_next_run_and_a_live_ones_stays(tmp_path):
    """A process killed (SIGKILL) inside atomic_folder leaves its ``.NAME.XXXXXXXX.tmp``; the
    next run for the same output removes it. A temporary folder whose writer still runs is
    kept, and so is the rest of the folder."""
    import signal
    import subprocess
    import sys

    from medsam.fileutil import atomic_folder

    out = tmp_path / "graphs"
    code = ("import sys, time; from medsam.fileutil import atomic_folder\n"
            "with atomic_folder(sys.argv[1]) as tmp:\n"
            "    (tmp / 'part.onnx').write_bytes(b'x' * 1000); print('writing', flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    alive = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    assert alive.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    (tmp_path / "mine.txt").write_text("a user's file")
    leftovers = sorted(p.name for p in tmp_path.glob(".graphs.*.tmp"))
    assert len(leftovers) == 2
    try:
        with atomic_folder(out, overwrite=True) as tmp:
            (tmp / "done.txt").write_text("ok")
        remaining = sorted(p.name for p in tmp_path.glob(".graphs.*.tmp"))
        assert len(remaining) == 1 and remaining[0] in leftovers     # the live writer's, kept
        assert sorted(p.name for p in out.iterdir()) == ["done.txt"]   # no owner file committed
        assert (tmp_path / "mine.txt").read_text() == "a user's file"
    finally:
        alive.kill()
        alive.wait()
