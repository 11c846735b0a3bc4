"""The DICOMweb server's settings: addresses, credentials from the environment or a config
file (never from an address), and their errors. The protocol itself is tested against a real
Orthanc in tests/cli/test_pacs_cli.py."""

import json

import pytest

from medsam.io.dicomweb import PacsError, PacsServer, is_dicomweb_address, pacs_server, service_url


@pytest.mark.parametrize("address, url", [
    ("dicomweb://127.0.0.1:8042/dicom-web", "http://127.0.0.1:8042/dicom-web"),
    ("dicomwebs://pacs.example.org/dicom-web/", "https://pacs.example.org/dicom-web"),
    ("https://pacs.example.org:8443/wado", "https://pacs.example.org:8443/wado"),
])
def test_addresses(address, url):
    assert service_url(address) == url
    assert PacsServer(address).describe() == url


@pytest.mark.parametrize("address, message", [
    ("ftp://pacs/x", "not a DICOMweb address"),
    ("pacs.example.org/dicom-web", "not a DICOMweb address"),
    ("dicomweb://alice:secret@pacs:8042/dicom-web", "never in the address"),
])
def test_bad_addresses(address, message):
    with pytest.raises(PacsError, match=message) as error:
        service_url(address)
    assert "secret" not in str(error.value)


def test_is_dicomweb_address():
    assert is_dicomweb_address("dicomweb://h/p") and is_dicomweb_address("DICOMWEBS://h/p")
    assert not is_dicomweb_address("scan.nii.gz") and not is_dicomweb_address("C:/scans/ct")


def test_settings_come_from_the_config_file_then_the_environment_then_the_address(tmp_path):
    config = tmp_path / "pacs.json"
    config.write_text(json.dumps({"url": "dicomweb://a:1/dw", "username": "alice", "password": "from-file",
                                  "verify": str(tmp_path / "ca.pem"), "timeout": 5, "retries": 1}))
    server = pacs_server(config=config, env={})
    assert (server.url, server.username, server.password, server.verify, server.timeout, server.retries) == \
        ("http://a:1/dw", "alice", "from-file", str(tmp_path / "ca.pem"), 5.0, 1)
    env = {"MEDSAM_PACS_PASSWORD": "from-env", "MEDSAM_PACS_VERIFY": "0", "MEDSAM_PACS_CONFIG": str(config)}
    server = pacs_server("dicomwebs://b:2/dw", env=env)
    assert (server.url, server.password, server.verify) == ("https://b:2/dw", "from-env", False)
    assert "from-env" not in repr(server) and "from-file" not in repr(server)
    token = pacs_server("dicomweb://c/dw", env={"MEDSAM_PACS_TOKEN": "t0k3n"})
    assert token.token == "t0k3n" and token.username is None and token.verify is True
    assert token.client()._session.headers["Authorization"] == "Bearer t0k3n"   # the session it sends with


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a readable JSON PACS config"),
    ('{"url": "dicomweb://a/b", "passwd": "x"}', "unknown: passwd"),
    ('{"url": "dicomweb://a/b", "username": "alice"}', "needs both a user name and a password"),
    ('{"url": "dicomweb://a/b", "username": "a", "password": "p", "token": "t"}', "not both"),
    ('{"username": "a", "password": "p"}', "no PACS named"),
])
def test_bad_configs(tmp_path, content, message):
    config = tmp_path / "pacs.json"
    config.write_text(content)
    with pytest.raises(PacsError, match=message):
        pacs_server(config=config, env={})


def test_a_missing_config_named_in_the_environment(tmp_path):
    with pytest.raises(PacsError, match="PACS config file not found"):
        pacs_server("dicomweb://a/b", env={"MEDSAM_PACS_CONFIG": str(tmp_path / "none.json")})
