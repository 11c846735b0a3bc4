"""The page's third-party files: NiiVue (the viewer) and Swagger UI (the API's ``/docs``).

They come from the npm registry, pinned by ``viewer/package-lock.json``; nothing from npm
is committed. ``viewer/package.json`` names the files the server serves (its ``medsam.served``
table: served name -> path under ``node_modules``). They are found in one of two places:

* ``viewer/assets/<name>``: an installed wheel. Building the wheel runs ``npm ci`` and
  copies the served files there, with the packages' licences (``setup.py``);
* ``viewer/node_modules/<path>``: a source checkout after ``npm ci --prefix
  src/medsam/web/viewer``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import MedSAMError

#: ``package.json``, its lockfile and, in a checkout, ``node_modules``; in a wheel, ``assets``
VIEWER_DIR = Path(__file__).parent / "viewer"
#: where a built wheel keeps the served files (flat, by served name)
ASSETS = "assets"


def served_paths(viewer_dir: Path = VIEWER_DIR) -> dict[str, str]:
    """Served name -> path under ``node_modules``, as ``package.json`` lists them."""
    manifest = json.loads((Path(viewer_dir) / "package.json").read_text(encoding="utf-8"))
    return dict(manifest["medsam"]["served"])


def viewer_files(viewer_dir: Path = VIEWER_DIR) -> dict[str, Path]:
    """Served name (``niivue.js``, ``swagger-ui-bundle.js``, ``swagger-ui.css``) -> the file.

    Raises:
        MedSAMError: a file is in neither place (a checkout where ``npm ci`` was not run).
    """
    viewer_dir = Path(viewer_dir)
    if not (viewer_dir / "package.json").is_file():
        raise MedSAMError(f"the NiiVue viewer is not installed in {viewer_dir}: it has no package.json; "
                          f"reinstall the package")
    found: dict[str, Path] = {}
    for name, under_modules in served_paths(viewer_dir).items():
        for path in (viewer_dir / ASSETS / name, viewer_dir / "node_modules" / under_modules):
            if path.is_file():
                found[name] = path
                break
        else:
            raise MedSAMError(f"the NiiVue viewer is not installed in {viewer_dir} ({under_modules} is missing): "
                              f"install it from the npm registry with `npm ci --prefix {viewer_dir}`, or install "
                              f"a built wheel, which carries it")
    return found
