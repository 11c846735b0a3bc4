"""The web app with a PACS configured on the server (a real Orthanc, tests/orthanc.py): its
series found and opened from the page, segmented, and the SEG saved back, through the API
and in a real browser. The credentials stay on the server: the page never sees them, and
never talks to the PACS itself."""

import json

import pytest

from tests.orthanc import orthanc

from web_server import drag_box, wait_status

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, pacs_ct_series):
    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        server.upload(pacs_ct_series)
        yield server


@pytest.fixture(scope="module")
def server(lite_medsam_model, pacs):
    from medsam.io.dicomweb import pacs_server

    from web_server import make_app, serve

    with serve(make_app(lite_medsam_model, pacs=pacs_server(pacs.address, env=pacs.env))) as url:
        yield url


def _seg_series(pacs):
    return [s for s in pacs.get("/series") if pacs.get(f"/series/{s}")["MainDicomTags"].get("Modality") == "SEG"]


def test_find_open_segment_and_save_through_the_api(server, http, pacs, pacs_ct_series):
    health = http.get(f"{server}/api/health").json()
    assert health["pacs"] == pacs.address.replace("dicomweb", "http")
    assert pacs.password not in json.dumps(health)
    found = http.get(f"{server}/api/pacs/series", params={"modality": "CT"}).json()
    assert found["server"] == health["pacs"] and len(found["series"]) == 1
    series = found["series"][0]
    sid = http.post(f"{server}/api/sessions").json()["id"]
    url = f"{server}/api/sessions/{sid}"
    missing = http.post(f"{url}/pacs", json={"study": series["study"], "series": "1.2.3"})
    assert missing.status_code == 400 and "1.2.3: no such series on the server" in missing.json()["detail"]
    opened = http.post(f"{url}/pacs", json={"study": series["study"], "series": series["series"], "modality": "ct",
                                            "window": "abdomen"})
    assert opened.status_code == 200, opened.text
    image = opened.json()["image"]
    assert image["shape"] == [20, 512, 512] and "dcm" in image["exports"]
    done = http.post(f"{url}/segment", json={"box": [107, 199, 278, 374], "slice": 12, "z_range": [11, 13],
                                             "name": "liver", "category": "SCT^123037004^Anatomical Structure",
                                             "type": "SCT^10200004^Liver"})
    assert done.status_code == 200, done.text
    before = len(_seg_series(pacs))
    saved = http.post(f"{url}/pacs/store")
    assert saved.status_code == 200, saved.text
    assert saved.json()["stored"] == 1 and len(_seg_series(pacs)) == before + 1
    instance = pacs.get(f"/series/{_seg_series(pacs)[-1]}")["Instances"][0]
    tags = pacs.get(f"/instances/{instance}/simplified-tags")
    assert tags["SegmentSequence"][0]["SegmentLabel"] == "liver"
    assert tags["ReferencedSeriesSequence"][0]["SeriesInstanceUID"] == series["series"]


def test_a_series_over_the_upload_limit_is_refused(lite_medsam_model, http, pacs):
    """Opening from the PACS is held to the upload limit, counted as the files arrive."""
    from medsam.io.dicomweb import pacs_server
    from medsam.web import ServerLimits

    from web_server import make_app, serve

    with serve(make_app(lite_medsam_model, limits=ServerLimits(max_upload_bytes=2**20),
                        pacs=pacs_server(pacs.address, env=pacs.env))) as small:
        series = http.get(f"{small}/api/pacs/series", params={"modality": "CT"}).json()["series"][0]
        sid = http.post(f"{small}/api/sessions").json()["id"]
        answer = http.post(f"{small}/api/sessions/{sid}/pacs", json={"study": series["study"],
                                                                     "series": series["series"]})
        assert answer.status_code == 400
        assert answer.json()["detail"].endswith("the series is larger than the 1 MiB that may be retrieved here")
        assert "image" not in http.get(f"{small}/api/sessions/{sid}").json()


def test_a_server_without_a_pacs_says_so(lite_medsam_model, http):
    from web_server import make_app, serve

    with serve(make_app(lite_medsam_model)) as plain:
        assert http.get(f"{plain}/api/health").json()["pacs"] is None
        answer = http.get(f"{plain}/api/pacs/series")
        assert answer.status_code == 404 and answer.json()["detail"] == "this server has no PACS configured"


def test_open_from_pacs_segment_and_save_to_pacs_in_the_browser(page, pacs):
    assert page.is_visible("#pacs") and not page.is_visible("#pacs-save")
    page.fill("#pacs-modality", "ct")
    page.click("#pacs-find")
    wait_status(page, "searching the PACS")
    assert "CT Body 3.0" in page.text_content("#pacs-series")
    page.select_option("#modality", "ct")
    page.select_option("#window", "abdomen")
    page.click("#pacs-series button:text-is('Open')")
    wait_status(page, "opening CT series", timeout=180_000)
    page.evaluate("window.medsamApp.goToSlice(12)")
    page.wait_for_function("document.getElementById('location').textContent.startsWith('slice 12 ')")
    drag_box(page, [107, 199, 278, 374], z=12)
    wait_status(page, "segmenting", timeout=180_000)
    assert len(page.evaluate("window.medsamApp.state.info.objects")) == 1
    before = len(_seg_series(pacs))
    page.click("#pacs-save")
    wait_status(page, "saved")
    assert "to the PACS" in page.text_content("#status")
    assert len(_seg_series(pacs)) == before + 1
    instance = pacs.get(f"/series/{_seg_series(pacs)[-1]}")["Instances"][0]
    assert pacs.get(f"/instances/{instance}/simplified-tags")["Modality"] == "SEG"
