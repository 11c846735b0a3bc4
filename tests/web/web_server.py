"""Helpers of the web app tests: the real app, on the real weights, and the page's controls
as a user works them in the browser (Playwright)."""

from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")


def make_app(model, model_name="lite_medsam", **options):
    from medsam.segmentation import MedSAMSegmenter
    from medsam.segmentation.embedding_store import configured_store
    from medsam.web import create_app

    store = configured_store()   # the test session's (tests/conftest.py: session_embeddings)
    return create_app(lambda: MedSAMSegmenter(model, store=store), model_name=model_name, **options)


def serve(app):
    """Run ``app`` with uvicorn in a thread on a free port of 127.0.0.1; yield its base URL."""
    from medsam.web import serving

    return serving(app)


def wait_status(page, start, timeout=120_000):
    page.wait_for_function(
        "([start]) => { const s = document.getElementById('status'); "
        "return s.className === 'error' || (s.textContent.startsWith(start) && !s.className.includes('busy')); }",
        arg=[start], timeout=timeout)
    text = page.text_content("#status")
    assert page.get_attribute("#status", "class") != "error", text
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")  # drawn
    return text


def open_image(page, path, **selects):
    page.set_input_files("#file", str(path))
    for field, value in selects.items():
        page.select_option(f"#{field}", value)
    page.click("#open")
    wait_status(page, "opening")


def drag_box(page, box, z=0):
    """Press the mouse at the box's first corner and release it at the other, on slice z."""
    canvas = page.locator("#viewer").bounding_box()
    (ax, ay), (bx, by) = (page.evaluate(f"window.medsamApp.canvasPoint({x}, {y}, {z})")
                          for x, y in (box[:2], box[2:]))
    page.mouse.move(canvas["x"] + ax, canvas["y"] + ay)
    page.mouse.down()
    page.mouse.move(canvas["x"] + bx, canvas["y"] + by, steps=8)
    page.mouse.up()
    return canvas, (ax, ay, bx, by)


def download(page, link_text, tmp_path):
    with page.expect_download() as info:
        page.click(f"text={link_text}")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def red_fraction(png, region):
    """Share of overlay-red pixels (the first label's colour) in a screenshot region."""
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    rgb = np.asarray(Image.open(png).convert("RGB"))[min(y0, y1):max(y0, y1), min(x0, x1):max(x0, x1)].astype(int)
    red = (rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60)
    return red.mean()


def screenshot_showing(page, path, region, minimum, timeout=20.0):
    """A screenshot once the viewer has drawn the overlay: the labels are fetched and drawn
    after the answer arrives, so a screenshot taken at once may precede them. Returns the
    last red fraction (the caller asserts on it)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        page.screenshot(path=str(path))
        fraction = red_fraction(path, region)
        if fraction > minimum or time.monotonic() > deadline:
            return fraction
        time.sleep(0.1)
