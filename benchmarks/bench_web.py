"""How interactive the web app is: request times of the REST API with the real LiteMedSAM
weights on a real CT, over HTTP against the app served by uvicorn in this process.

    python benchmarks/bench_web.py [--runs 5]

Prints the median (and range) of each step: opening the CT, the first box on a slice (the
slice's embedding + one decoder pass), a further box and a click on the same slice
(decoder only: the embedding is cached), propagating an object through the volume, and
downloading the label map; and the same first/further box on a 2D photo.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDSAM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _timed(times: dict, name: str, fn):
    start = time.perf_counter()
    response = fn()
    times.setdefault(name, []).append(time.perf_counter() - start)
    response.raise_for_status()
    return response


def _one_run(http, base: str, times: dict) -> None:
    ct = SHARED / "totalseg/example_ct_sm.nii.gz"
    url = f"{base}/api/sessions/{http.post(f'{base}/api/sessions').json()['id']}"
    files = [("files", (ct.name, ct.read_bytes()))]
    _timed(times, "CT: open (upload, read, normalise)", lambda: http.post(
        f"{url}/image", files=files, data={"modality": "ct", "window": "abdomen"}))
    box = {"box": [70, 29, 92, 51], "slice": 9, "label": 1, "propagate": False}
    _timed(times, "CT: first box on a slice (embedding + decoder)", lambda: http.post(f"{url}/segment", json=box))
    _timed(times, "CT: another box on that slice", lambda: http.post(
        f"{url}/segment", json={**box, "box": [26, 30, 50, 52], "label": 2}))
    _timed(times, "CT: a click on that slice", lambda: http.post(
        f"{url}/segment", json={**box, "points": [[80, 40]], "point_labels": [1]}))
    _timed(times, "CT: propagate one object (30 slices)", lambda: http.post(
        f"{url}/segment", json={**box, "propagate": True}))
    _timed(times, "CT: download the label map (nii.gz)", lambda: http.get(f"{url}/labels"))
    http.delete(url)

    photo = sorted((SHARED / "isic_ham10000_skin/images").iterdir())[0]
    url = f"{base}/api/sessions/{http.post(f'{base}/api/sessions').json()['id']}"
    http.post(f"{url}/image", files=[("files", (photo.name, photo.read_bytes()))]).raise_for_status()
    _timed(times, "photo: first box (embedding + decoder)", lambda: http.post(
        f"{url}/segment", json={"box": [100, 80, 500, 400], "label": 1}))
    _timed(times, "photo: another box (decoder, both objects)", lambda: http.post(
        f"{url}/segment", json={"box": [50, 50, 200, 200], "label": 2}))
    http.delete(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import httpx

    from medsam import load_model
    from medsam.segmentation import MedSAMSegmenter
    from medsam.web import create_app, serving

    model = load_model("lite_medsam")
    times: dict[str, list[float]] = {}
    with serving(create_app(lambda: MedSAMSegmenter(model))) as base, httpx.Client(timeout=600) as http:
        for _ in range(args.runs):
            _one_run(http, base, times)
    print(f"web app request times, {args.runs} runs, LiteMedSAM on {os.cpu_count()} CPU(s); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':50s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for name, values in times.items():
        print(f"{name:50s} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
