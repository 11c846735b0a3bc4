"""The README's web-app screenshot, made from a real session: the CT of ``../shared/data``,
both kidneys from one key-slice box each, propagated, in Debian's Chromium.

    python benchmarks/web_screenshot.py [-o docs/images/web_app.png]

Prints each kidney's volume beside the reference's (the TotalSegmentator labels).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
KIDNEYS = {"right kidney": (2, [70, 29, 92, 51]), "left kidney": (3, [26, 30, 50, 52])}


def _wait(page, start: str) -> None:
    page.wait_for_function(
        "([start]) => { const s = document.getElementById('status'); "
        "return s.className === 'error' || (s.textContent.startsWith(start) && !s.className.includes('busy')); }",
        arg=[start], timeout=300_000)
    if page.get_attribute("#status", "class") == "error":
        raise SystemExit(f"the page says: {page.text_content('#status')}")


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from medsam import io, load_model
    from medsam.metrics import label_volumes
    from medsam.segmentation import MedSAMSegmenter
    from medsam.web import create_app, serving

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs/images/web_app.png"))
    args = parser.parse_args(argv)
    ct = SHARED / "totalseg/example_ct_sm.nii.gz"
    model = load_model()
    app = create_app(lambda: MedSAMSegmenter(model), model_name="lite_medsam")
    with serving(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--disable-background-networking", "--use-angle=swiftshader",
                                                   "--enable-unsafe-swiftshader"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(url + "/")
        _wait(page, "ready")
        page.set_input_files("#file", str(ct))
        page.select_option("#modality", "ct")
        page.select_option("#window", "abdomen")
        page.click("#open")
        _wait(page, "opening")
        page.evaluate("window.medsamApp.goToSlice(9)")
        canvas = page.locator("#viewer").bounding_box()
        for index, (name, (_, box)) in enumerate(KIDNEYS.items()):
            page.click("#new")
            (ax, ay), (bx, by) = (page.evaluate(f"window.medsamApp.canvasPoint({x}, {y}, 9)")
                                  for x, y in (box[:2], box[2:]))
            page.mouse.move(canvas["x"] + ax, canvas["y"] + ay)
            page.mouse.down()
            page.mouse.move(canvas["x"] + bx, canvas["y"] + by, steps=8)
            page.mouse.up()
            _wait(page, "segmenting")
            field = page.locator("#objects input[type=text]").nth(index)
            field.fill(name)
            field.press("Enter")
            _wait(page, "renaming")
            page.locator("#objects li").nth(index).locator("button:text-is('Propagate')").click()
            _wait(page, "propagating")
        page.evaluate("window.medsamApp.goToSlice(9)")
        page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        page.screenshot(path=args.output)
        objects = page.evaluate("window.medsamApp.state.info.objects")
        browser.close()
    reference, geometry = io.read(SHARED / "totalseg/example_seg.nii.gz")
    volumes = {m.label: m.volume for m in label_volumes(reference, geometry.spacing)}
    for o in objects:
        ref = volumes[KIDNEYS[o["name"]][0]]
        print(f"{o['name']}: {o['volume']:.1f} mL (reference {ref:.1f} mL, {100 * (o['volume'] / ref - 1):+.0f}%), "
              f"slices {o['slices'][0]}-{o['slices'][1]}")
    print(f"screenshot: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
