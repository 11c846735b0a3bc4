"""Real wheels and installed distributions made on disk, for the weights-source tests.

:func:`make_wheel` writes a minimal valid wheel (``.dist-info`` with METADATA, WHEEL and
RECORD) that pip downloads from a local folder; :func:`install_tree` lays the same
files out as ``pip install`` would in a ``site-packages`` folder.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path


def _dist_info(dist: str, version: str) -> tuple[str, dict[str, bytes]]:
    folder = f"{dist.replace('-', '_')}-{version}.dist-info"
    return folder, {
        f"{folder}/METADATA": (f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                               f"Summary: test wheel\n").encode(),
        f"{folder}/WHEEL": b"Wheel-Version: 1.0\nGenerator: medsam-tests\nRoot-Is-Purelib: true\n"
                           b"Tag: py3-none-any\n",
    }


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, dist: str, version: str, members: dict[str, bytes]) -> Path:
    """Write ``<dist>-<version>-py3-none-any.whl`` holding ``members`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    info, meta = _dist_info(dist, version)
    files = {**members, **meta}
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def install_tree(site: Path, dist: str, version: str, members: dict[str, bytes]) -> Path:
    """Lay ``members`` and the distribution's metadata out under ``site`` (a
    ``site-packages`` folder), as an installed distribution; returns ``site``."""
    info, meta = _dist_info(dist, version)
    for name, data in {**members, **meta}.items():
        target = site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (site / info / "RECORD").write_text(
        "\n".join(_record_line(n, d) for n, d in {**members, **meta}.items()) + "\n")
    return site


def pip_env(wheel_folder: Path) -> dict[str, str]:
    """Environment that makes pip use only ``wheel_folder`` (no index, no config files),
    as a user pointing pip at a local mirror would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": str(wheel_folder), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    return env
