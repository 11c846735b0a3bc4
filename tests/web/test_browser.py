"""The web page in a real browser: Playwright drives Debian's Chromium (headless, no background
networking) against the real app. A CT organ and a 2D skin lesion are segmented by dragging
boxes with the mouse; the overlay is checked on a screenshot; the exported label maps must
equal `medsam segment` on the same boxes."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsam import io
from medsam.metrics import dice
from medsam.segmentation import mask_to_box

CHROMIUM = Path("/usr/bin/chromium")
CT = "totalseg/example_ct_sm.nii.gz"
SKIN = "isic_ham10000_skin"

pytestmark = pytest.mark.slow


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
    _wait_status(page, "ready")
    yield page
    context.close()
    assert not errors, f"errors on the page: {errors}"
    assert not outside, f"the page asked for something outside its server: {outside}"


def _wait_status(page, start, timeout=120_000):
    page.wait_for_function(
        "([start]) => { const s = document.getElementById('status'); "
        "return s.className === 'error' || (s.textContent.startsWith(start) && !s.className.includes('busy')); }",
        arg=[start], timeout=timeout)
    text = page.text_content("#status")
    assert page.get_attribute("#status", "class") != "error", text
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")  # drawn
    return text


def _open(page, path, **selects):
    page.set_input_files("#file", str(path))
    for field, value in selects.items():
        page.select_option(f"#{field}", value)
    page.click("#open")
    _wait_status(page, "opening")


def _drag_box(page, box, z=0):
    """Press the mouse at the box's first corner and release it at the other, on slice z."""
    canvas = page.locator("#viewer").bounding_box()
    (ax, ay), (bx, by) = (page.evaluate(f"window.medsamApp.canvasPoint({x}, {y}, {z})")
                          for x, y in (box[:2], box[2:]))
    page.mouse.move(canvas["x"] + ax, canvas["y"] + ay)
    page.mouse.down()
    page.mouse.move(canvas["x"] + bx, canvas["y"] + by, steps=8)
    page.mouse.up()
    return canvas, (ax, ay, bx, by)


def _download(page, link_text, tmp_path):
    with page.expect_download() as info:
        page.click(f"text={link_text}")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def _red_fraction(png, region):
    """Share of overlay-red pixels (the first label's colour) in a screenshot region."""
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    rgb = np.asarray(Image.open(png).convert("RGB"))[min(y0, y1):max(y0, y1), min(x0, x1):max(x0, x1)].astype(int)
    red = (rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60)
    return red.mean()


def _screenshot_showing(page, path, region, minimum, timeout=20.0):
    """A screenshot once the viewer has drawn the overlay: the labels are fetched and drawn
    after the answer arrives, so a screenshot taken at once may precede them. Returns the
    last red fraction (the caller asserts on it)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        page.screenshot(path=str(path))
        fraction = _red_fraction(path, region)
        if fraction > minimum or time.monotonic() > deadline:
            return fraction
        time.sleep(0.1)


def test_segment_a_kidney_on_ct_propagate_and_export(page, shared_data, tmp_path, cli):
    _open(page, shared_data / CT, modality="ct", window="abdomen")
    page.evaluate("window.medsamApp.goToSlice(9)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 9 ')")
    canvas = page.locator("#viewer").bounding_box()
    page.mouse.move(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
    page.mouse.wheel(0, -100)                            # scrolling moves to another slice ...
    page.wait_for_function("!document.getElementById('location').textContent.startsWith('slice 9 ')")
    page.evaluate("window.medsamApp.goToSlice(9)")      # ... and back to the key slice
    box = [70, 29, 92, 51]
    before = tmp_path / "before.png"
    page.screenshot(path=str(before))
    canvas, corners = _drag_box(page, box, z=9)
    text = _wait_status(page, "segmenting")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert len(objects) == 1, f"status {text!r}, objects {objects}"
    region = (canvas["x"] + corners[0], canvas["y"] + corners[1], canvas["x"] + corners[2], canvas["y"] + corners[3])
    assert _red_fraction(before, region) < 0.01
    assert _screenshot_showing(page, tmp_path / "after.png", region, 0.3) > 0.3   # the mask shows over the kidney
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"]["z_range"] == [9, 9] and objects[0]["slices"] == [9, 9]

    page.click("button:text-is('Propagate')")
    _wait_status(page, "propagating")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"] == {"box": box, "slice": 9, "label": 1, "name": "object 1"}
    assert "mL" in page.text_content("#objects")
    exported = _download(page, "labels .nii.gz", tmp_path)
    assert exported.name == "example_ct_sm_seg.nii.gz"
    out = tmp_path / "cli.nii.gz"
    done = cli("segment", str(shared_data / CT), "--box", ",".join(map(str, box)), "--slice", "9",
               "--modality", "ct", "--window", "abdomen", "-o", str(out))
    assert done.returncode == 0, done.stderr
    web, web_geometry = io.read(exported)
    expected, geometry = io.read(out)
    np.testing.assert_array_equal(web, expected)
    assert web_geometry == geometry and web.sum() > 1000
    prompts = _download(page, "prompts .json", tmp_path)
    assert prompts.name == "example_ct_sm_prompts.json"
    assert json.loads(prompts.read_text()) == {"prompts": [objects[0]["prompt"]]}


def test_segment_a_skin_lesion_refine_with_a_click_undo_and_export_png(page, shared_data, tmp_path, cli):
    image = sorted((shared_data / SKIN / "images").iterdir())[0]
    reference = next((shared_data / SKIN / "masks").glob(image.stem + "*"))
    truth = io.read(reference)[0] > 0
    box = [int(v) for v in mask_to_box(truth)]
    _open(page, image)
    _drag_box(page, box)
    _wait_status(page, "segmenting")
    boxed = io.read(_download(page, "labels .png", tmp_path))[0]
    assert dice(boxed > 0, truth) > 0.85

    # a background click inside the box, at the lesion's centre: the mask changes there
    page.check("input[name=tool][value='0']")
    canvas = page.locator("#viewer").bounding_box()
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    x, y = page.evaluate(f"window.medsamApp.canvasPoint({cx}, {cy}, 0)")
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)
    _wait_status(page, "removing")
    prompt = page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    assert prompt["point_labels"] == [0] and abs(prompt["points"][0][0] - cx) <= 1
    clicked = _download(page, "labels .png", tmp_path)
    prompts = _download(page, "prompts .json", tmp_path)
    out = tmp_path / "cli_prompts.png"
    done = cli("segment", str(image), "--prompts", str(prompts), "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(io.read(clicked)[0], io.read(out)[0])
    assert (io.read(clicked)[0] != boxed).sum() > 0

    page.click("#undo")
    _wait_status(page, "undoing")
    assert "points" not in page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    web = io.read(_download(page, "labels .png", tmp_path))[0]
    out = tmp_path / "cli.png"
    done = cli("segment", str(image), "--box", ",".join(map(str, box)), "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(web, io.read(out)[0])
    np.testing.assert_array_equal(web, boxed)


def test_a_click_on_another_slice_and_a_slice_range_bound_the_ct_kidney(page, shared_data, tmp_path, cli):
    _open(page, shared_data / CT, modality="ct", window="abdomen")
    page.evaluate("window.medsamApp.goToSlice(9)")
    box = [70, 29, 92, 51]
    _drag_box(page, box, z=9)
    _wait_status(page, "segmenting")
    page.click("button:text-is('Propagate')")
    _wait_status(page, "propagating")
    propagated = io.read(_download(page, "labels .nii.gz", tmp_path))[0] > 0
    assert propagated[14].sum() > 50

    # a background click at the middle of the mask on slice 14, not the key slice
    zs, ys, xs = np.nonzero(propagated[14:15])
    cx, cy = int(np.median(xs)), int(np.median(ys))
    page.evaluate("window.medsamApp.goToSlice(14)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 14 ')")
    page.check("input[name=tool][value='0']")
    canvas = page.locator("#viewer").bounding_box()
    x, y = page.evaluate(f"window.medsamApp.canvasPoint({cx}, {cy}, 14)")
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)
    _wait_status(page, "removing at slice 14")
    clicked = io.read(_download(page, "labels .nii.gz", tmp_path))[0] > 0
    assert not clicked[14, cy, cx] and (clicked[14] != propagated[14]).sum() > 0
    np.testing.assert_array_equal(clicked[:9], propagated[:9])       # far slices untouched
    prompt = page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    assert prompt["points"] == [[cx, cy, 14]] and prompt["point_labels"] == [0]

    # "Last slice here" on slice 12: nothing beyond it
    page.evaluate("window.medsamApp.goToSlice(12)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 12 ')")
    page.click("button:text-is('Last slice here')")
    _wait_status(page, "slices 0-12")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"]["z_range"] == [0, 12] and objects[0]["slices"][1] <= 12
    bounded = _download(page, "labels .nii.gz", tmp_path)
    assert not (io.read(bounded)[0][13:] > 0).any()
    prompts = _download(page, "prompts .json", tmp_path)
    out = tmp_path / "cli.nii.gz"
    done = cli("segment", str(shared_data / CT), "--prompts", str(prompts), "--modality", "ct",
               "--window", "abdomen", "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(io.read(bounded)[0], io.read(out)[0])
