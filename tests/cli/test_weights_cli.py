import io

import torch

from http_server import refused_url, serve


def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(6.0)}, buffer)
    return buffer.getvalue()


def env_for(tmp_path):
    return {"MEDSAM_HOME": str(tmp_path / "home")}


def files_in(tmp_path):
    home = tmp_path / "home"
    return sorted(p.name for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_list_shows_official_entries(cli, tmp_path):
    result = cli("weights", "list", env=env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("sam_vit_b", "medsam_vit_b", "lite_medsam"):
        assert name in out
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in out
    assert "md5:3bb6db55bd0c9ca30b61248bca72f8d6" in out
    assert "none published" in out
    assert str(tmp_path / "home" / "weights") in out


def test_path_missing_says_where_to_put_it(cli, tmp_path):
    result = cli("weights", "path", "sam_vit_b", env=env_for(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("medsam: error:")
    assert str(tmp_path / "home" / "weights" / "sam_vit_b_01ec64.pth") in result.stderr


def test_download_then_path(cli, tmp_path):
    data = checkpoint_bytes()
    with serve({"/lite_medsam.pth": data}) as base:
        result = cli("weights", "download", "lite_medsam", "--url", base + "/lite_medsam.pth",
                     "--quiet", env=env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    target = tmp_path / "home" / "weights" / "lite_medsam.pth"
    assert result.stdout.strip() == str(target)
    assert target.read_bytes() == data
    result = cli("weights", "path", "lite_medsam", env=env_for(tmp_path))
    assert result.returncode == 0 and result.stdout.strip() == str(target)


def test_download_corrupted_rejected(cli, tmp_path):
    with serve({"/medsam_vit_b.pth": checkpoint_bytes()}) as base:
        result = cli("weights", "download", "medsam_vit_b", "--url", base + "/medsam_vit_b.pth",
                     "--quiet", env=env_for(tmp_path))
    assert result.returncode == 2
    assert "expected 3bb6db55bd0c9ca30b61248bca72f8d6" in result.stderr
    assert files_in(tmp_path) == []


def test_download_404(cli, tmp_path):
    with serve({}) as base:
        result = cli("weights", "download", "sam_vit_b", "--url", base + "/gone.pth", "--quiet",
                     env=env_for(tmp_path))
    assert result.returncode == 2 and "HTTP 404" in result.stderr
    assert files_in(tmp_path) == []


def test_download_offline(cli, tmp_path):
    result = cli("weights", "download", "medsam_vit_b", "--url", refused_url(), "--quiet",
                 env=env_for(tmp_path))
    assert result.returncode == 2
    assert "offline" in result.stderr
    assert str(tmp_path / "home" / "weights" / "medsam_vit_b.pth") in result.stderr
    assert files_in(tmp_path) == []


def test_unknown_name(cli, tmp_path):
    result = cli("weights", "download", "nope", env=env_for(tmp_path))
    assert result.returncode == 2 and "unknown weights name 'nope'" in result.stderr
