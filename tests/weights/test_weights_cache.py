import dataclasses
import hashlib
import io
import urllib.request
from pathlib import Path

import pytest
import torch

from medsam import weights
from medsam.errors import InputError, MedSAMError, WeightsDownloadError

from http_server import refused_url, serve


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


def make_entry(data: bytes | None, sources=(), name="tiny", checksum="md5"):
    """An entry for ``data`` (checked by ``checksum``: md5, sha256, or None for none)."""
    digest = None
    if checksum is not None and data is not None:
        digest = f"{checksum}:" + hashlib.new(checksum, data).hexdigest()
    return weights.WeightsEntry(
        name=name, filename=f"{name}.pth",
        sources=tuple(sources) or (weights.UrlSource("http://127.0.0.1:9/none"),),
        variant="vit_b", transform="medsam", checksum=digest,
        size_bytes=len(data) if (data is not None and checksum) else None,
        description="test", homepage="test")


@pytest.fixture
def tiny_entry(monkeypatch):
    """Register an md5-checked entry whose checksum matches :func:`small_checkpoint`."""
    data = small_checkpoint()
    entry = make_entry(data)
    monkeypatch.setitem(weights.WEIGHTS, "tiny", entry)
    return entry, data


def cache_files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_registry_has_official_entries():
    for name in ("sam_vit_b", "medsam_vit_b", "lite_medsam"):
        entry = weights.WEIGHTS[name]
        assert entry.name == name
        assert entry.url.startswith("https://")
        assert entry.checksum is not None
    assert weights.DEFAULT_WEIGHTS == "lite_medsam"
    lite = weights.WEIGHTS["lite_medsam"]
    assert lite.checksum == ("sha256:79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3"
                             "028ce76")
    assert lite.size_bytes == 39_370_479
    kinds = [type(s) for s in lite.sources]
    assert kinds == [weights.InstalledPackageSource, weights.PipWheelSource, weights.UrlSource]
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
    assert "md5 3bb6db55bd0c9ca30b61248bca72f8d6" in message
    assert "checkpoint file's path instead" in message
    assert "--" not in message  # library messages name no command-line flags


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
                            make_entry(data, [weights.UrlSource(base + "/w/tiny.pth")]))
        path = weights.get_weights_path("tiny", download=True, progress=False)
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


def test_unverified_entry_accepts_checkpoint_rejects_html(home, monkeypatch):
    monkeypatch.setitem(weights.WEIGHTS, "unverified", make_entry(None, name="unverified",
                                                                   checksum=None))
    with serve({"/lite.pth": small_checkpoint(), "/page": b"<html>quota exceeded</html>"}) as base:
        with pytest.raises(WeightsDownloadError, match="not a PyTorch checkpoint"):
            weights.download("unverified", url=base + "/page", progress=False)
        assert cache_files(home) == []
        path = weights.download("unverified", url=base + "/lite.pth", progress=False)
    assert path.name == "unverified.pth" and weights.verify("unverified")


def test_lite_medsam_rejects_other_bytes(home):
    """The LiteMedSAM entry accepts only the published bytes (size and sha256)."""
    with serve({"/lite.pth": small_checkpoint()}) as base:
        with pytest.raises(WeightsDownloadError, match="bytes, expected 39370479"):
            weights.download("lite_medsam", url=base + "/lite.pth", progress=False)
    assert cache_files(home) == []


def test_http_404(home, tiny_entry):
    with serve({}) as base:
        with pytest.raises(WeightsDownloadError, match="HTTP 404.*put the file tiny.pth"):
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
