"""`medsam pacs` and `medsam segment dicomweb://...` against a real Orthanc (tests/orthanc.py):
the round trip from the archive and back, and what a user sees when it fails."""

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.orthanc import cutting_relay, orthanc

#: the CT series' right kidney region on five slices (the README's DICOM example, narrowed)
CT_BOX = ["--box", "107,199,278,374", "--slice", "12", "--slices", "10,14", "--modality", "ct"]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, pacs_ct_series):
    """A running Orthanc holding the CT series (stored with ``medsam pacs store``)."""
    from tests.conftest import call_cli

    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        done = call_cli("pacs", "store", server.address, pacs_ct_series, env=server.env)
        assert done.returncode == 0 and "stored 20 instances" in done.stdout, done.stderr
        yield server


@pytest.fixture(scope="module")
def uids(pacs_ct_series):
    first = pydicom.dcmread(sorted(pacs_ct_series.iterdir())[0], stop_before_pixels=True)
    return str(first.StudyInstanceUID), str(first.SeriesInstanceUID)


def test_round_trip_find_segment_store_and_read_back(cli, pacs, uids, pacs_ct_series, tmp_path, same_place):
    from medsam.io.dicom_seg import read_dicom_seg
    from medsam.io.dicomweb import pacs_server, retrieve_series

    study, series = uids
    found = cli("pacs", "find", pacs.address, "--modality", "CT", "--json", env=pacs.env)
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert [(r["study"], r["series"], r["instances"]) for r in rows] == [(study, series, 20)]
    table = cli("pacs", "find", pacs.address, "--study", study, env=pacs.env).stdout
    assert table.splitlines()[0].split()[:3] == ["patient_id", "date", "modality"] and series in table

    remote = cli("segment", pacs.address, "--study", study, "--series", series, *CT_BOX,
                 "-o", tmp_path / "pacs.dcm", "--store", env=pacs.env)
    assert remote.returncode == 0, remote.stderr
    assert f"{pacs.address.replace('dicomweb', 'http')} study {study} series {series} -> " in remote.stdout
    assert "stored" in remote.stdout and pacs.password not in remote.stdout + remote.stderr
    local = cli("segment", pacs_ct_series, *CT_BOX, "-o", tmp_path / "local.dcm")
    assert local.returncode == 0, local.stderr

    segs = json.loads(cli("pacs", "find", pacs.address, "--modality", "SEG", "--json", env=pacs.env).stdout)
    assert len(segs) == 1 and segs[0]["study"] == study and segs[0]["instances"] == 1
    back = retrieve_series(pacs_server(pacs.address, env=pacs.env), study, segs[0]["series"], tmp_path / "back")
    stored = next(back.iterdir())
    ds = pydicom.dcmread(stored)
    assert ds.Modality == "SEG" and ds.ReferencedSeriesSequence[0].SeriesInstanceUID == series
    referenced = {str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    on_server = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in pacs_ct_series.iterdir()}
    assert referenced <= on_server and referenced
    got, geometry = read_dicom_seg(stored)
    want, local_geometry = read_dicom_seg(tmp_path / "local.dcm")
    assert got.any() and np.array_equal(got, want) and same_place(geometry, local_geometry)


def test_wrong_credentials_a_missing_study_and_credentials_in_the_address(cli, pacs, uids, tmp_path):
    study, series = uids
    out = tmp_path / "seg.dcm"
    wrong = cli("segment", pacs.address, "--study", study, "--series", series, *CT_BOX, "-o", out,
                env={**pacs.env, "MEDSAM_PACS_PASSWORD": "not-the-password"})
    assert wrong.returncode == 2 and not out.exists()
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the credentials (HTTP 401)" in lines[0]
    assert "not-the-password" not in wrong.stderr and pacs.address.split("//")[1] in lines[0]

    missing = cli("segment", pacs.address, "--study", "1.2.3.4", "--series", "5.6.7.8", *CT_BOX, "-o", out,
                  env=pacs.env)
    assert missing.returncode == 2 and not out.exists()
    assert missing.stderr.strip().splitlines() == [
        f"medsam: error: {pacs.address.replace('dicomweb', 'http')}: study 1.2.3.4 series 5.6.7.8: "
        f"no such series on the server"]

    inline = cli("pacs", "find", pacs.address.replace("//", f"//{pacs.user}:{pacs.password}@"))
    assert inline.returncode == 2 and pacs.password not in inline.stderr
    assert "never in the address" in inline.stderr


def test_a_connection_dropped_in_the_middle_of_the_series(cli, pacs, uids, tmp_path):
    """The relay passes the search, then closes the retrieval after 2 MB of the series'
    ~10 MB: one line naming the server and the study, nothing written, nothing left."""
    import tempfile

    study, series = uids
    port = int(pacs.rest.rsplit(":", 1)[1])
    before = set(Path(tempfile.gettempdir()).glob("medsam-pacs-*"))
    with cutting_relay(port, after_bytes=2_000_000) as relay:
        address = f"dicomweb://127.0.0.1:{relay}/dicom-web"
        done = cli("segment", address, "--study", study, "--series", series, *CT_BOX, "-o", tmp_path / "seg.dcm",
                   env={**pacs.env, "MEDSAM_PACS_CONFIG": _config(tmp_path, retries=0)})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{relay}/dicom-web: study {study} series {series}" in lines[0]
    assert any(reason in lines[0] for reason in ("closed before the answer was complete", "the series' 20 instances",
                                                 "connection closed in the middle of the series"))
    assert list(tmp_path.iterdir()) == [tmp_path / "pacs.json"]
    assert set(Path(tempfile.gettempdir()).glob("medsam-pacs-*")) == before


@pytest.mark.parametrize("answer, reason, tries", [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 30\r\nConnection: close\r\n\r\n"
     b"<html>please log in</html>   ", "not DICOM", 1),
    (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     "the server answered HTTP 503", 2),
], ids=["html-page", "503"])
def test_a_gateway_that_answers_a_retrieval_with_something_else(cli, pacs, uids, tmp_path, answer, reason, tries):
    """A gateway in front of the PACS passes the search, then answers the series' retrieval
    with a login page, or with 503 (after one retry): one line naming the server and the
    study, nothing written."""
    study, series = uids
    port = int(pacs.rest.rsplit(":", 1)[1])
    env = {**pacs.env, "MEDSAM_PACS_CONFIG": _config(tmp_path, retries=1)}
    retrievals: list = []
    with cutting_relay(port, answer=answer, retrievals=retrievals) as relay:
        done = cli("segment", f"dicomweb://127.0.0.1:{relay}/dicom-web", "--study", study, "--series", series,
                   *CT_BOX, "-o", tmp_path / "seg.dcm", env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{relay}/dicom-web: study {study}" in lines[0] and reason in lines[0], lines
    assert list(tmp_path.iterdir()) == [tmp_path / "pacs.json"]
    assert len(retrievals) == tries                 # a 503 is tried again (retries 1); a page is not


def test_a_server_that_refuses_the_seg_leaves_the_local_seg_whole_and_says_so(cli, uids, pacs_ct_series, tmp_path):
    """Orthanc with a rule that refuses SEG instances (a Lua ``ReceivedInstanceFilter``)
    still answers the STOW as stored; the lookup afterwards finds it missing. The DICOM SEG
    stays whole where it was written, and the one line says so."""
    refuse = 'function ReceivedInstanceFilter(dicom, origin, info)\n  return dicom.Modality ~= "SEG"\nend\n'
    study, series = uids
    with orthanc(tmp_path / "orthanc", lua=refuse) as strict:
        assert cli("pacs", "store", strict.address, pacs_ct_series, env=strict.env).returncode == 0
        out = tmp_path / "seg.dcm"
        done = cli("segment", strict.address, "--study", study, "--series", series, *CT_BOX, "-o", out, "--store",
                   env=strict.env)
        assert done.returncode == 2, done.stdout
        lines = [line for line in done.stderr.splitlines() if line.startswith("medsam: error")]
        assert len(lines) == 1 and f"study {study}: " in lines[0] and "1 of them are not on it" in lines[0]
        assert f"nothing was stored, the DICOM SEG is at {out}" in lines[0]
        assert pydicom.dcmread(out).Modality == "SEG"            # written whole before the store
        assert [strict.get(f"/series/{s}")["MainDicomTags"]["Modality"] for s in strict.get("/series")] == ["CT"]
        wrong_out = cli("segment", strict.address, "--study", study, "--series", series, *CT_BOX,
                        "-o", tmp_path / "seg.nii.gz", "--store", env=strict.env)
        assert wrong_out.returncode == 2 and "only a DICOM SEG (.dcm) can be stored" in wrong_out.stderr


def _config(folder: Path, **settings) -> str:
    path = folder / "pacs.json"
    path.write_text(json.dumps(settings))
    return str(path)


def test_tls_is_verified_by_default_and_a_ca_bundle_is_taken(cli, tmp_path):
    from tests.orthanc import https_server, self_signed_pem

    pem = self_signed_pem(tmp_path)
    with https_server(pem) as port:
        address = f"dicomwebs://127.0.0.1:{port}/dicom-web"
        refused = cli("pacs", "find", address, env={"MEDSAM_PACS_CONFIG": _config(tmp_path, retries=0)})
        assert refused.returncode == 2
        assert refused.stderr.strip().endswith("the server's TLS certificate could not be verified")
        trusted = cli("pacs", "find", address, env={"MEDSAM_PACS_CONFIG": _config(tmp_path, verify=str(pem))})
        assert trusted.returncode == 0, trusted.stderr
        assert trusted.stdout.strip() == f"no series on https://127.0.0.1:{port}/dicom-web match"


def test_a_server_that_does_not_answer(cli, tmp_path):
    """A real socket that takes the connection and never answers: the request times out."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        address = f"dicomweb://127.0.0.1:{silent.getsockname()[1]}/dicom-web"
        done = cli("pacs", "find", address, env={"MEDSAM_PACS_CONFIG": _config(tmp_path, timeout=1, retries=0)})
    finally:
        silent.close()
    assert done.returncode == 2 and done.stderr.strip().endswith("the server did not answer in time")


@pytest.mark.slow
def test_two_torchrun_workers_on_one_series_list_and_the_batch_resumed(cli, cli_process, pacs, uids, tmp_path,
                                                                         shared_data):
    """Two processes share a list of three series (two on the server, one not): each series
    is one case, the missing one fails alone, the SEGs are stored; the same command again
    keeps what is done and stores it again (idempotent), and fails the missing one again."""
    import csv
    import os
    import runpy
    import subprocess
    import sys

    from tests.conftest import ROOT

    fill_uids = runpy.run_path(str(ROOT / "examples/fill_dicom_uids.py"))["fill_uids"]
    second = fill_uids(shared_data / "totalseg/example_ct_dicom", tmp_path / "second")   # new study and series UIDs
    assert cli("pacs", "store", pacs.address, second, env=pacs.env).returncode == 0
    first_ds = pydicom.dcmread(sorted(second.iterdir())[0], stop_before_pixels=True)
    listed = [{"study": uids[0], "series": uids[1]},
              {"study": str(first_ds.StudyInstanceUID), "series": str(first_ds.SeriesInstanceUID)},
              {"study": "1.2.3", "series": "9.9.9"}]
    series_list = tmp_path / "series.json"
    series_list.write_text(json.dumps(listed))
    out = tmp_path / "segs"
    common = ["segment", pacs.address, "--series-list", series_list, *CT_BOX, "-o", out, "--store", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1", **pacs.env, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "medsam", *map(str, common)], env=env, capture_output=True, text=True, timeout=900)
    assert two.returncode != 0, two.stderr                          # the missing series failed
    assert "segmented 2 of 3 series" in two.stdout and "by 2 processes" in two.stdout, two.stdout + two.stderr
    assert "9.9.9: no such series on the server" in two.stderr

    def times() -> list[tuple[str, str]]:
        with open(out / "segment_times.csv", newline="") as f:
            return [(row["case"], row["status"]) for row in csv.DictReader(f)]

    assert times() == [(listed[0]["series"], "ok"), (listed[1]["series"], "ok"), ("9.9.9", "failed")]
    written = sorted(p.name for p in out.glob("*_seg.dcm"))
    assert written == sorted(f"{r['series']}_seg.dcm" for r in listed[:2])
    segs = json.loads(cli("pacs", "find", pacs.address, "--modality", "SEG", "--json", env=pacs.env).stdout)
    on_server = {s["study"] for s in segs}
    assert {listed[0]["study"], listed[1]["study"]} <= on_server

    again = cli_process(*common, env=pacs.env)
    assert again.returncode == 1
    assert "segmented 2 of 3 series" in again.stdout and "2 kept from an earlier run" in again.stdout
    assert times() == [(listed[0]["series"], "done before"), (listed[1]["series"], "done before"), ("9.9.9", "failed")]
    segs_again = json.loads(cli("pacs", "find", pacs.address, "--modality", "SEG", "--json", env=pacs.env).stdout)
    assert len(segs_again) == len(segs)                             # stored again: the same instances


def test_serve_checks_its_pacs_before_it_loads_the_model(cli, pacs):
    wrong = cli("serve", "--pacs", pacs.address, "--port", "0",
                env={**pacs.env, "MEDSAM_PACS_PASSWORD": "not-the-password-7"})
    assert wrong.returncode == 2 and "refused the credentials (HTTP 401)" in wrong.stderr
    assert "medsam: model" not in wrong.stderr and "not-the-password-7" not in wrong.stderr
