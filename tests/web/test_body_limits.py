"""Uploads bounded from the upload on: a small file that declares a huge image is refused
from its header (413) before a voxel is decoded, a body that stalls is cut off (408), and
one client cannot hold more than its share of uploads open (429)."""

import gzip
import socket
import struct
import time

import pytest

from web_server import make_app, serve

pytestmark = pytest.mark.slow


def _session(http, server):
    return f"{server}/api/sessions/{http.post(f'{server}/api/sessions').json()['id']}"


def test_a_small_file_declaring_a_gigabyte_is_refused_from_its_header(lite_medsam_model, http, tmp_path):
    import SimpleITK as sitk

    from medsam.web import ServerLimits

    plain = tmp_path / "small.nii"
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkUInt8), str(plain))
    data = bytearray(plain.read_bytes())
    struct.pack_into("<8h", data, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    bomb = gzip.compress(bytes(data) + bytes(1 << 20))   # 1 MiB of zeros follow: all a decoder needs to start
    with serve(make_app(lite_medsam_model, limits=ServerLimits(max_memory_bytes=1 << 29))) as server:
        url = _session(http, server)
        start = time.monotonic()
        answer = http.post(f"{url}/image", files=[("files", ("bomb.nii.gz", bomb))])
        assert answer.status_code == 413, answer.text
        assert answer.json()["detail"].startswith("bomb.nii.gz: the image declares 1.0 GiB")
        assert "512.0 MiB allowed here" in answer.json()["detail"]
        assert time.monotonic() - start < 5
        assert "image" not in http.get(url).json()


def _stalled_upload(url: str, declared: int = 100_000) -> socket.socket:
    """A connection that sends an upload's headers and a few bytes of its body, then nothing."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST {path}/image HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                 f"boundary=b\r\nContent-Length: {declared}\r\n\r\n--b\r\n".encode())
    return sock


def _status(sock: socket.socket) -> int:
    reply = b""
    while b"\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return int(reply.split(b" ")[1]) if reply else 0


def test_stalled_uploads_are_cut_off_and_bounded_per_client(lite_medsam_model, http):
    from medsam.web import ServerLimits

    limits = ServerLimits(body_idle_seconds=1.5, uploads_per_client=2)
    with serve(make_app(lite_medsam_model, limits=limits)) as server:
        url = _session(http, server)
        start = time.monotonic()
        first, second = _stalled_upload(url), _stalled_upload(url)
        time.sleep(0.3)
        third = _stalled_upload(url)
        assert _status(third) == 429                       # a third at once from this address
        assert _status(first) == 408 and _status(second) == 408
        assert time.monotonic() - start < 10
        for sock in (first, second, third):
            sock.close()
        assert http.get(f"{server}/api/health").status_code == 200
        ok = http.post(f"{url}/image", files=[("files", ("x.png", b"not a png"))])
        assert ok.status_code == 400                       # the slots are free again


def test_a_trickled_body_is_cut_off_by_its_average_rate(lite_medsam_model):
    from medsam.web import ServerLimits

    limits = ServerLimits(body_idle_seconds=1.0, body_min_rate=10_000)
    with serve(make_app(lite_medsam_model, limits=limits)) as server:
        import httpx

        url = _session(httpx, server)
        sock = _stalled_upload(url, declared=10_000)      # 1 s idle + 1 s at the rate: 2 s in all
        start = time.monotonic()
        import select

        while time.monotonic() - start < 10 and not select.select([sock], [], [], 0.5)[0]:
            try:
                sock.sendall(b"x")                           # never idle, far too slow
            except OSError:
                break
        status = _status(sock)
        assert status == 408 and time.monotonic() - start < 5
        sock.close()
