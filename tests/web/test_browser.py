"""The web page in a real browser: Playwright drives Debian's Chromium (headless, no background
networking) against the real app. A CT organ and a 2D skin lesion are segmented by dragging
boxes with the mouse; the overlay is checked on a screenshot; the exported label maps must
equal `medsam segment` on the same boxes, with the model `medsam serve` uses by default (the
interactive one)."""

import json

import numpy as np
import pytest

from medsam import io
from medsam.metrics import dice
from medsam.segmentation import mask_to_box

from web_server import download, drag_box, open_image, red_fraction, screenshot_showing, wait_status

CT = "totalseg/example_ct_sm.nii.gz"
SKIN = "isic_ham10000_skin"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(lite_interactive_model):
    """The app as ``medsam serve`` starts it: with the model trained for interaction, so the
    clicks below go to the model (``medsam segment`` gets the same model to compare)."""
    from web_server import make_app, serve

    with serve(make_app(lite_interactive_model, model_name="lite_interactive")) as url:
        yield url


def test_segment_a_kidney_on_ct_propagate_and_export(page, shared_data, tmp_path, cli):
    open_image(page, shared_data / CT, modality="ct", window="abdomen")
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
    canvas, corners = drag_box(page, box, z=9)
    text = wait_status(page, "segmenting")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert len(objects) == 1, f"status {text!r}, objects {objects}"
    region = (canvas["x"] + corners[0], canvas["y"] + corners[1], canvas["x"] + corners[2], canvas["y"] + corners[3])
    assert red_fraction(before, region) < 0.01
    assert screenshot_showing(page, tmp_path / "after.png", region, 0.3) > 0.3   # the mask shows over the kidney
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"]["z_range"] == [9, 9] and objects[0]["slices"] == [9, 9]

    page.click("button:text-is('Propagate')")
    wait_status(page, "propagating")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"] == {"box": box, "slice": 9, "label": 1, "name": "object 1"}
    assert "mL" in page.text_content("#objects")
    exported = download(page, "labels .nii.gz", tmp_path)
    assert exported.name == "example_ct_sm_seg.nii.gz"
    out = tmp_path / "cli.nii.gz"
    done = cli("segment", "--weights", "lite_interactive", str(shared_data / CT), "--box", ",".join(map(str, box)),
               "--slice", "9", "--modality", "ct", "--window", "abdomen", "-o", str(out))
    assert done.returncode == 0, done.stderr
    web, web_geometry = io.read(exported)
    expected, geometry = io.read(out)
    np.testing.assert_array_equal(web, expected)
    assert web_geometry == geometry and web.sum() > 1000
    prompts = download(page, "prompts .json", tmp_path)
    assert prompts.name == "example_ct_sm_prompts.json"
    assert json.loads(prompts.read_text()) == {"prompts": [objects[0]["prompt"]]}


def test_segment_a_skin_lesion_refine_with_a_click_undo_and_export_png(page, shared_data, tmp_path, cli):
    image = sorted((shared_data / SKIN / "images").iterdir())[0]
    reference = next((shared_data / SKIN / "masks").glob(image.stem + "*"))
    truth = io.read(reference)[0] > 0
    box = [int(v) for v in mask_to_box(truth)]
    open_image(page, image)
    drag_box(page, box)
    wait_status(page, "segmenting")
    boxed = io.read(download(page, "labels .png", tmp_path))[0]
    assert dice(boxed > 0, truth) > 0.85

    # a background click inside the box, at the lesion's centre: the mask changes there
    page.check("input[name=tool][value='0']")
    canvas = page.locator("#viewer").bounding_box()
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    x, y = page.evaluate(f"window.medsamApp.canvasPoint({cx}, {cy}, 0)")
    page.mouse.click(canvas["x"] + x, canvas["y"] + y)
    wait_status(page, "removing")
    prompt = page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    assert prompt["point_labels"] == [0] and abs(prompt["points"][0][0] - cx) <= 1
    clicked = download(page, "labels .png", tmp_path)
    prompts = download(page, "prompts .json", tmp_path)
    out = tmp_path / "cli_prompts.png"
    done = cli("segment", "--weights", "lite_interactive", str(image), "--prompts", str(prompts), "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(io.read(clicked)[0], io.read(out)[0])
    assert (io.read(clicked)[0] != boxed).sum() > 0

    page.click("#undo")
    wait_status(page, "undoing")
    assert "points" not in page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    web = io.read(download(page, "labels .png", tmp_path))[0]
    out = tmp_path / "cli.png"
    done = cli("segment", "--weights", "lite_interactive", str(image), "--box", ",".join(map(str, box)), "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(web, io.read(out)[0])
    np.testing.assert_array_equal(web, boxed)


def test_a_click_on_another_slice_and_a_slice_range_bound_the_ct_kidney(page, shared_data, tmp_path, cli):
    open_image(page, shared_data / CT, modality="ct", window="abdomen")
    page.evaluate("window.medsamApp.goToSlice(9)")
    box = [70, 29, 92, 51]
    drag_box(page, box, z=9)
    wait_status(page, "segmenting")
    page.click("button:text-is('Propagate')")
    wait_status(page, "propagating")
    propagated = io.read(download(page, "labels .nii.gz", tmp_path))[0] > 0
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
    wait_status(page, "removing at slice 14")
    clicked = io.read(download(page, "labels .nii.gz", tmp_path))[0] > 0
    assert not clicked[14, cy, cx] and (clicked[14] != propagated[14]).sum() > 0
    np.testing.assert_array_equal(clicked[:9], propagated[:9])       # far slices untouched
    prompt = page.evaluate("window.medsamApp.state.info.objects[0].prompt")
    assert prompt["points"] == [[cx, cy, 14]] and prompt["point_labels"] == [0]

    # "Last slice here" on slice 12: nothing beyond it
    page.evaluate("window.medsamApp.goToSlice(12)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 12 ')")
    page.click("button:text-is('Last slice here')")
    wait_status(page, "slices 0-12")
    objects = page.evaluate("window.medsamApp.state.info.objects")
    assert objects[0]["prompt"]["z_range"] == [0, 12] and objects[0]["slices"][1] <= 12
    bounded = download(page, "labels .nii.gz", tmp_path)
    assert not (io.read(bounded)[0][13:] > 0).any()
    prompts = download(page, "prompts .json", tmp_path)
    out = tmp_path / "cli.nii.gz"
    done = cli("segment", "--weights", "lite_interactive", str(shared_data / CT), "--prompts", str(prompts),
               "--modality", "ct", "--window", "abdomen", "-o", str(out))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(io.read(bounded)[0], io.read(out)[0])


def test_the_page_draws_labels_in_the_export_colours_and_says_how_to_start(page):
    """The colours of .seg.nrrd / DICOM SEG segments (``io.label_colour``) are the page's,
    beyond the palette's length too; the empty viewer says what to do, not "loading"."""
    for label in range(1, 2 * len(io.LABEL_COLOURS) + 2):
        assert page.evaluate(f"window.medsamApp.colour({label})") == "rgb({}, {}, {})".format(*io.label_colour(label))
    assert "choose a file" in page.evaluate("window.medsamApp.nv.opts.loadingText")


def test_a_box_on_another_structure_is_shown_as_probably_wrong(page, shared_data, tmp_path):
    """The stomach box of issue 34 on its key slice: the model takes another structure, and
    the object list says so beside the object, with the model's predicted IoU."""
    open_image(page, shared_data / CT, modality="ct", window="abdomen")
    page.evaluate("window.medsamApp.goToSlice(14)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 14 ')")
    drag_box(page, [33, 45, 66, 81], z=14)
    wait_status(page, "segmenting")
    text = page.text_content("#objects")
    assert "predicted IoU 0." in text
    assert "Probably wrong: the model's predicted IoU is low" in text
    warning = page.locator("#objects .warning").first
    assert warning.is_visible()
    page.screenshot(path=str(tmp_path / "warning.png"))
