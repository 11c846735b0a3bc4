"""Fixtures of the web app tests: the real app (real LiteMedSAM weights) served by uvicorn
on a free local port, and an HTTP client for it."""

import pytest

from web_server import make_app, serve


@pytest.fixture(scope="module")
def server(lite_medsam_model):
    """Base URL of the app with the default limits and the real LiteMedSAM model."""
    with serve(make_app(lite_medsam_model)) as url:
        yield url


@pytest.fixture
def http():
    import httpx

    with httpx.Client(timeout=120) as client:
        yield client
