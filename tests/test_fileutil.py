import os
import stat

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
