"""The built wheel is complete: installed in a fresh virtual environment (not editable, no
``node_modules`` anywhere, ``npm`` off the PATH), ``medsam serve`` serves the page with its
viewer, and a user segments a skin lesion in it with the mouse.

The wheel is built here as a user builds it (``python -m build``: the sdist, then the
wheel from the sdist, whose build hook runs ``npm ci``), so a file missing from either
fails this test."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from medsam import io
from medsam.metrics import dice
from medsam.segmentation import mask_to_box

from web_server import download, drag_box, open_image, wait_status

ROOT = Path(__file__).resolve().parents[2]
SKIN = "isic_ham10000_skin"

pytestmark = pytest.mark.slow


def _run(*command, **options):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, **options)
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (found,) = out.glob("medsam_toolkit-*-py3-none-any.whl")
    return found


def _link_installed(name: str, site: Path, done: set[str]) -> None:
    """Link distribution ``name`` and what it requires (no extras) from this interpreter's
    environment into ``site``, each as pip installed it (its folders, modules and
    ``.dist-info``), so pip in the new environment finds them installed."""
    from importlib import metadata

    from packaging.requirements import Requirement

    dist = metadata.distribution(name)
    key = dist.metadata["Name"].lower().replace("_", "-")
    if key in done:
        return
    done.add(key)
    for top in {Path(str(f)).parts[0] for f in dist.files or ()} - {".."}:
        source = Path(str(dist.locate_file(top)))
        if source.exists() and not (site / top).exists():
            (site / top).symlink_to(source)
    for text in dist.requires or ():
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            _link_installed(requirement.name, site, done)


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel):
    """A fresh virtual environment that already has torch (this environment's, linked in,
    as on a machine where the README's ``pip install torch==2.13.0`` ran before), then the
    wheel and its web extra installed by pip, not editable."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    _run(sys.executable, "-m", "venv", venv)
    (site,) = venv.glob("lib/python*/site-packages")
    _link_installed("torch", site, set())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # a checkout's src is no install
    _run(venv / "bin/python", "-m", "pip", "install", "-q", "torch==2.13.0", f"{wheel}[web]", env=env)
    return venv


@pytest.fixture(scope="module")
def server(venv, lite_medsam_checkpoint, tmp_path_factory):
    """``medsam serve`` from the installed wheel, with only the venv's bin on the PATH (the
    default weights come from the user's cache, where ``lite_medsam_checkpoint`` put them)."""
    env = {"PATH": str(venv / "bin"), "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in ("HOME", "MEDSAM_HOME", "XDG_CACHE_HOME") if k in os.environ})
    assert shutil.which("npm", path=env["PATH"]) is None and shutil.which("node", path=env["PATH"]) is None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([str(venv / "bin/medsam"), "serve", "--port", str(port)], env=env,
                                   cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, f"medsam serve exited: {log.read_text()}"
            try:
                if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"medsam serve did not answer: {log.read_text()}"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_wheel_carries_the_viewer_and_no_node_modules(venv, server):
    where = _run(venv / "bin/python", "-c", "import medsam, sys; print(medsam.__file__)", cwd=venv,
                 env={"PATH": str(venv / "bin")}).stdout.strip()
    assert where.startswith(str(venv)) and "site-packages" in where
    package = venv.joinpath(*where.split("/")[len(venv.parts):]).parent
    assets = package / "web/viewer/assets"
    assert {p.name for p in assets.iterdir()} == {"niivue.js", "swagger-ui-bundle.js", "swagger-ui.css",
                                                  "THIRD_PARTY.txt"}
    assert "@niivue/niivue 0.69.0 (BSD-2-Clause)" in (assets / "THIRD_PARTY.txt").read_text()
    assert not list(venv.rglob("node_modules"))
    # the shipped interactive model is package data of the wheel, and loads from it
    assert (package / "weights/data/lite_interactive.pth").is_file()
    env = {"PATH": str(venv / "bin"), **{k: os.environ[k] for k in ("HOME", "MEDSAM_HOME", "XDG_CACHE_HOME")
                                         if k in os.environ}}
    loaded = _run(venv / "bin/python", "-c", "import medsam; m = medsam.load_model('lite_interactive'); "
                  "print(m.info.interactive, m.info.weights_file)", cwd=venv, env=env).stdout.split()
    assert loaded[0] == "True" and loaded[1].startswith(str(package))
    served = httpx.get(server + "/static/niivue.js", timeout=30)
    assert served.status_code == 200 and served.content == (assets / "niivue.js").read_bytes()
    docs = httpx.get(server + "/docs", timeout=30)
    assert docs.status_code == 200 and "/static/swagger-ui-bundle.js" in docs.text
    assert httpx.get(server + "/static/swagger-ui-bundle.js", timeout=30).status_code == 200


def test_a_skin_lesion_segmented_in_the_installed_app(page, shared_data, tmp_path):
    image = sorted((shared_data / SKIN / "images").iterdir())[0]
    truth = io.read(next((shared_data / SKIN / "masks").glob(image.stem + "*")))[0] > 0
    open_image(page, image)
    drag_box(page, [int(v) for v in mask_to_box(truth)])
    wait_status(page, "segmenting")
    labels = io.read(download(page, "labels .png", tmp_path))[0]
    assert dice(labels > 0, truth) > 0.85
