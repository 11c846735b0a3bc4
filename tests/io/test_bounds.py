"""Small files that declare or expand into huge arrays: refused in one line, exit 2, before
memory runs out. Each command runs as a real process under an address-space cap
(``resource.setrlimit``), so a reader that allocated what the file declares would die of
MemoryError or be killed instead of printing the line."""

from __future__ import annotations

import gzip
import io
import resource
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.io import read
from medsam.io.bounds import TooLargeError, read_limits
from medsam.io.plain_npz import load_plain_npz
from tests.conftest import ROOT

#: the address space the capped commands may use: enough for Python, numpy and ITK
CAP = 1536 << 20


def _capped_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "medsam", *args], capture_output=True, text=True,
                          env=full, preexec_fn=cap, timeout=120)


def _one_line_exit_2(done: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("medsam: error: "), done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _npy_header(shape: tuple, descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _zip(path, **members: bytes):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def _shared_lists(levels: int) -> np.ndarray:
    """A list of two references to one list of two references to ... (2^levels leaves)."""
    item: list = [1]
    for _ in range(levels):
        item = [item, item]
    arr = np.empty(1, dtype=object)
    arr[0] = item
    return arr


def test_shared_references_cannot_multiply_the_plain_copy(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez(path, segs=np.zeros((4, 4, 4), np.uint8), boxes=_shared_lists(40))
    assert path.stat().st_size < 2000
    _one_line_exit_2(_capped_cli("volume", str(path)), "bomb.npz: 'boxes'", "counted as copied")


def test_deeply_nested_lists_are_one_line(tmp_path):
    n = 200_000
    member = _npy_header((1,), "|O") + b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."
    path = _zip(tmp_path / "deep.npz", segs=_npy_header((2, 2, 2), "|u1") + bytes(8), boxes=member)
    _one_line_exit_2(_capped_cli("volume", str(path)), "deep.npz: 'boxes'", "nested more than 64 levels")


def test_an_npy_header_is_checked_against_the_member_before_allocating(tmp_path):
    path = _zip(tmp_path / "huge.npz", segs=_npy_header((10**4, 10**4, 10**4), "|u1"))
    _one_line_exit_2(_capped_cli("volume", str(path)), "huge.npz: 'segs'", "931.3 GiB")
    # under the machine's bound, the header is compared with what the member holds
    small = _zip(tmp_path / "short.npz", segs=_npy_header((64, 64, 64), "|u1") + bytes(100))
    with pytest.raises(InputError, match=r"short.npz: 'segs': its header declares 256.0 KiB .* holds 100 bytes"):
        load_plain_npz(small)


def test_decompression_is_bounded(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, segs=np.zeros((256, 512, 512), np.uint8))   # 64 MiB in ~64 KiB
    assert path.stat().st_size < 1 << 20
    _one_line_exit_2(_capped_cli("volume", str(path), env={"MEDSAM_MAX_ARRAY_GB": "0.03"}),
                     "zeros.npz: 'segs' declares 64.0 MiB", "30.7 MiB allowed")
    with read_limits(max_array_bytes=80 << 20):   # within the bound: read whole, once
        assert load_plain_npz(path)["segs"].shape == (256, 512, 512)


def test_too_much_pickle_is_refused(tmp_path):
    path = tmp_path / "fat.npz"
    np.savez(path, segs=np.zeros((2, 2, 2), np.uint8), boxes=np.array([list(range(200_000))], dtype=object))
    with read_limits(max_pickle_bytes=1 << 16), pytest.raises(TooLargeError, match="fat.npz: 'boxes'"):
        load_plain_npz(path)


def _small_volume(tmp_path, name: str) -> object:
    import SimpleITK as sitk

    path = tmp_path / name
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(path))
    return path


def test_a_small_nifti_declaring_a_gigabyte_is_refused_before_decoding(tmp_path):
    plain = _small_volume(tmp_path, "small.nii")
    data = bytearray(plain.read_bytes())
    struct.pack_into("<8h", data, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    path = tmp_path / "gig.nii.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    _one_line_exit_2(_capped_cli("volume", str(path), env={"MEDSAM_MAX_ARRAY_GB": "0.5"}),
                     "gig.nii.gz: the image declares 1.0 GiB", "512.0 MiB allowed")


@pytest.mark.parametrize("name, field", [("big.mha", "DimSize"), ("big.nrrd", "sizes")])
def test_text_headers_declaring_too_much_are_refused(tmp_path, name, field):
    path = _small_volume(tmp_path, name)
    data = path.read_bytes()
    head, sep, body = data.partition(b"\n\n" if name.endswith(".nrrd") else b"ElementDataFile")
    head = head.replace(b"DimSize = 4 4 4", b"DimSize = 2048 2048 2048").replace(b"sizes: 4 4 4",
                                                                                 b"sizes: 2048 2048 2048")
    assert b"2048" in head
    path.write_bytes(head + sep + body)
    with pytest.raises(TooLargeError, match=rf"{name}: the image declares 8.0 GiB"), \
            read_limits(max_array_bytes=1 << 30):
        read(path)


def test_voxel_bound_is_checked_from_the_header(tmp_path):
    path = _small_volume(tmp_path, "v.nrrd")
    with read_limits(max_voxels=63), pytest.raises(TooLargeError, match="declares 64 voxels, more than the 63"):
        read(path)
    with read_limits(max_voxels=64):
        assert read(path)[0].shape == (4, 4, 4)


def test_bounds_are_only_lowered():
    with read_limits(max_array_bytes=1 << 20) as inner:
        with read_limits(max_array_bytes=1 << 40) as nested:
            assert nested.max_array_bytes == 1 << 20
        assert inner.max_array_bytes == 1 << 20


def test_plain_pickled_data_still_read(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez(path, segs=np.zeros((2, 2, 2), np.uint8),
             boxes=np.array([{"z_min": 0, "z_max": 1}], dtype=object))
    assert load_plain_npz(path)["boxes"] == [{"z_min": 0, "z_max": 1}]
