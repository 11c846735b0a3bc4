"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project root (present on
developer machines and in CI). ``MEDSAM_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (set MEDSAM_SHARED_DATA)")
    return SHARED_DATA


def run_cli(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m medsam ARGS`` as a real subprocess, with this checkout's
    ``src`` first on the path, and return the completed process (text mode)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "medsam", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli
