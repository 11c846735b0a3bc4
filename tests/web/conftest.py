"""Fixtures of the web app tests: the real app (real LiteMedSAM weights) served by uvicorn
on a free local port, an HTTP client for it, and Debian's Chromium driven by Playwright
(a module may define its own ``server``: the browser fixtures use it)."""

import pytest

from web_server import CHROMIUM, make_app, serve, wait_status


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


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), "
                    f"as .ci/run does")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--disable-background-networking", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    errors, outside = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url))
    page.goto(server + "/")
    wait_status(page, "ready")
    yield page
    context.close()
    assert not errors, f"errors on the page: {errors}"
    assert not outside, f"the page asked for something outside its server: {outside}"
