"""Build hook: a wheel carries the web app's viewer files, installed from the npm registry.

Everything else is in ``pyproject.toml``. Building a wheel (``python -m build``) runs
``npm ci`` on ``src/medsam/web/viewer/package-lock.json`` in a temporary folder and copies
the files that ``package.json`` lists under ``medsam.served`` into the wheel's
``medsam/web/viewer/assets/``, with a ``THIRD_PARTY.txt`` of every npm package's name,
version and licence text. Nothing from npm is committed. Editable installs skip this: a
checkout serves ``node_modules`` after ``npm ci --prefix src/medsam/web/viewer``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

VIEWER = Path("medsam", "web", "viewer")


def _third_party(modules: Path, lock: dict) -> str:
    """Name, version, licence and licence text of each package the lockfile installed."""
    parts = []
    for key, entry in sorted(lock["packages"].items()):
        if not key:
            continue
        folder = modules.parent / key
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("LICEN[CS]E*"))
                 if p.is_file()]
        parts.append(f"{key.removeprefix('node_modules/')} {entry.get('version')} "
                     f"({entry.get('license', 'licence not stated')})\n" + "".join(texts))
    return "\n\n".join(parts) + "\n"


def build_viewer_assets(source: Path, target: Path) -> None:
    """Run ``npm ci`` on ``source``'s lockfile (``package.json`` beside it) in a temporary
    folder and copy the served files into ``target`` (flat, by served name)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("building the medsam wheel needs npm (Node.js) for the web app's viewer: "
                         "install Node.js and npm, then build again")
    manifest = json.loads((source / "package.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(source / name, Path(tmp, name))
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", tmp], check=True)
        modules = Path(tmp, "node_modules")
        target.mkdir(parents=True, exist_ok=True)
        for served, under_modules in manifest["medsam"]["served"].items():
            shutil.copyfile(modules / under_modules, target / served)
        lock = json.loads((source / "package-lock.json").read_text(encoding="utf-8"))
        (target / "THIRD_PARTY.txt").write_text(_third_party(modules, lock), encoding="utf-8")


class BuildPyWithViewer(build_py):
    """``build_py``, then the viewer's files into the build folder (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        build_viewer_assets(Path("src") / VIEWER, Path(self.build_lib) / VIEWER / "assets")


setup(cmdclass={"build_py": BuildPyWithViewer})
