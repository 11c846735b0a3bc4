import dataclasses
import hashlib
import io
import urllib.request
from pathlib import Path

import pytest
import torch

from http_server import refused_url, serve
from medsam import weights
from medsam.errors import InputError, MedSAMError, WeightsDownloadError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def small_checkpoint() -> bytes:
    """A real (tiny) torch checkpoint file."""
    buffer = io.BytesIO()
    torch.manual_seed(0)
    torch.save({"mask_decoder.weight": torch.randn(8, 4)}, buffer)
    return buffer.getvalue()


@pytest.fixture
def tiny_entry(monkeypatch):
    """Register an md5-checked entry whose checksum matches :func:`small_checkpoint`."""
    data = small_checkpoint()
    entry = weights.WeightsEntry(
        name="tiny", filename="tiny.pth", url="http://127.0.0.1:9/none", variant="vit_b",
        transform="medsam", checksum="md5:" + hashlib.md5(data).hexdigest(),
        size_bytes=len(data), description="test", source="test")
    monkeypatch.setitem(weights.WEIGHTS, "tiny", entry)
    return entry, data


def cache_files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_registry_has_official_entries():
    for name in ("sam_vit_b", "medsam_vit_b", "lite_medsam"):
        entry = weights.WEIGHTS[name]
        assert entry.name == name
        assert entry.url.startswith("https://")
        assert entry.checksum is not None or "no checksum" in entry.note
    # SAM file names carry the first six MD5 digits
    for name in ("sam_vit_b", "sam_vit_l", "sam_vit_h"):
        entry = weights.WEIGHTS[name]
        assert entry.checksum.split(":")[1][:6] == entry.filename.rsplit("_", 1)[1][:6]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.name = "other"  # frozen


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSAM_HOME", str(tmp_path / "x"))
    assert weights.cache_dir() == tmp_path / "x"
    assert weights.weights_dir() == tmp_path / "x" / "weights"
    monkeypatch.delenv("MEDSAM_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "medsam"


def test_unknown_name(home):
    with pytest.raises(InputError, match="unknown weights name 'nope'.*medsam_vit_b"):
        weights.get_weights_path("nope")


def test_missing_weights_message_names_file_and_place(home):
    with pytest.raises(MedSAMError) as info:
        weights.get_weights_path("medsam_vit_b")
    message = str(info.value)
    assert str(home / "weights" / "medsam_vit_b.pth") in message
    assert weights.WEIGHTS["medsam_vit_b"].url in message


def test_download_verified_file(home, tiny_entry):
    entry, data = tiny_entry
    with serve({"/tiny.pth": data}) as base:
        path = weights.download("tiny", url=base + "/tiny.pth", progress=False)
    assert path == home / "weights" / "tiny.pth"
    assert path.read_bytes() == data
    assert cache_files(home) == [path]
    assert weights.get_weights_path("tiny") == path
    assert weights.verify("tiny")
    state = torch.load(path, weights_only=True)
    assert state["mask_decoder.weight"].shape == (8, 4)


def test_get_weights_path_downloads_from_registry_url(home, tiny_entry, monkeypatch):
    entry, data = tiny_entry
    with serve({"/w/tiny.pth": data}) as base:
        monkeypatch.setitem(weights.WEIGHTS, "tiny",
                            weights.WeightsEntry(**{**entry.__dict__, "url": base + "/w/tiny.pth"}))
        path = weights.get_weights_path("tiny", download=True)
    assert path.read_bytes() == data


def test_corrupted_file_is_rejected_and_nothing_kept(home, tiny_entry):
    entry, data = tiny_entry
    corrupted = bytearray(data)
    corrupted[len(corrupted) // 2] ^= 0xFF
    with serve({"/tiny.pth": bytes(corrupted)}) as base:
        with pytest.raises(WeightsDownloadError, match="md5 .* expected .*discarded"):
            weights.download("tiny", url=base + "/tiny.pth", progress=False)
    assert cache_files(home) == []


def test_wrong_size_is_rejected(home, tiny_entry):
    entry, data = tiny_entry
    with serve({"/tiny.pth": data + b"extra"}) as base:
        with pytest.raises(WeightsDownloadError, match="bytes, expected"):
            weights.download("tiny", url=base + "/tiny.pth", progress=False)
    assert cache_files(home) == []


def test_published_checksum_rejects_other_file(home):
    # a mirror serving something else than the published MedSAM file
    with serve({"/medsam_vit_b.pth": small_checkpoint()}) as base:
        with pytest.raises(WeightsDownloadError, match="3bb6db55bd0c9ca30b61248bca72f8d6"):
            weights.download("medsam_vit_b", url=base + "/medsam_vit_b.pth", progress=False)
    assert cache_files(home) == []


def test_unverified_entry_accepts_checkpoint_rejects_html(home):
    with serve({"/lite.pth": small_checkpoint(), "/page": b"<html>quota exceeded</html>"}) as base:
        with pytest.raises(WeightsDownloadError, match="not a PyTorch checkpoint"):
            weights.download("lite_medsam", url=base + "/page", progress=False)
        assert cache_files(home) == []
        path = weights.download("lite_medsam", url=base + "/lite.pth", progress=False)
    assert path.name == "lite_medsam.pth" and weights.verify("lite_medsam")


def test_http_404(home, tiny_entry):
    with serve({}) as base:
        with pytest.raises(WeightsDownloadError, match="HTTP 404.*put it at"):
            weights.download("tiny", url=base + "/missing.pth", progress=False)
    assert cache_files(home) == []


def test_connection_refused_gives_offline_message(home, tiny_entry):
    with pytest.raises(WeightsDownloadError) as info:
        weights.download("tiny", url=refused_url(), progress=False)
    message = str(info.value)
    assert "offline" in message
    assert str(home / "weights" / "tiny.pth") in message
    assert cache_files(home) == []


def test_existing_file_kept_unless_force(home, tiny_entry):
    entry, data = tiny_entry
    target = home / "weights" / "tiny.pth"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    with serve({"/tiny.pth": data}) as base:
        assert weights.download("tiny", url=base + "/tiny.pth", progress=False) == target
        assert target.read_bytes() == b"old"
        assert not weights.verify("tiny")
        weights.download("tiny", url=base + "/tiny.pth", force=True, progress=False)
    assert target.read_bytes() == data


def test_server_helper_really_serves():
    with serve({"/a": b"xyz"}) as base:
        assert urllib.request.urlopen(base + "/a").read() == b"xyz"
