"""`medsam serve` as a real process: it prints its address, serves the page and the API with
the default model, asks for a token when exposed, and refuses bad options with status 2."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "medsam", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _address(process, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "serving the web app on" in line:
            return line.split(" on ", 1)[1].split(" ")[0]
        if process.poll() is not None:
            raise AssertionError(f"medsam serve stopped: {process.stderr.read()}")
    raise AssertionError("medsam serve printed no address")


@pytest.mark.slow
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_serve_prints_its_address_and_serves(host, lite_medsam_checkpoint):
    port = _free_port()
    process = _start("--port", str(port), "--host", host)
    try:
        address = _address(process)
        base = f"http://127.0.0.1:{port}"
        if host == "127.0.0.1":
            assert address == f"{base}/"
            assert httpx.get(f"{base}/api/health").json()["model"] == "lite_medsam"
        else:   # exposed: a token is generated, printed in the address, and required
            token = address.split("?token=")[1]
            assert len(token) >= 16
            assert httpx.get(f"{base}/api/health").status_code == 401
            assert httpx.get(f"{base}/api/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert httpx.get(f"{base}/static/niivue.js").headers["content-type"].startswith("text/javascript")
        assert httpx.get(f"{base}/openapi.json").json()["paths"]["/api/sessions/{sid}/segment"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert ("warning: the app is reachable from other machines" in err) == (host != "127.0.0.1")


@pytest.mark.parametrize("args, message", [
    (["--port", "70000"], "--port 70000: not a port number"),
    (["--max-sessions", "0"], "--max-sessions must be positive"),
])
def test_bad_serve_options_exit_2(cli, args, message):
    done = cli("serve", *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
