"""A PACS over DICOMweb: search (QIDO-RS), retrieve a series (WADO-RS), store (STOW-RS).

The protocol is ``dicomweb-client``'s (the ``pacs`` extra); this module adds what a
hospital researcher needs around it:

* **The server** (:class:`PacsServer`): its address, credentials (HTTP basic auth or a
  bearer token), TLS verification (on by default; or a CA bundle), a timeout per request,
  and retries with exponential backoff for connection errors, timeouts and 429/502/503/504
  answers (a request is idempotent here: storing an instance again changes nothing).
  Credentials come from the environment or a JSON config file (:func:`pacs_server`), never
  from a URL or a command line, and never appear in messages: a server is named by
  :meth:`PacsServer.describe`, its address alone.
* **Addresses**: ``dicomweb://HOST:PORT/PATH`` (``http``) or ``dicomwebs://HOST:PORT/PATH``
  (``https``), or the ``http(s)://`` address itself.
* **Retrieval** (:func:`retrieve_series`) writes the series' instances into a new folder,
  each file written whole before it is renamed, and checks what came: every part a DICOM
  instance of the asked series, as many instances as the server's search says the series
  has. Anything else is one :class:`PacsError` naming the server and the study, and the
  folder is removed.
* **Storing** (:func:`store_files`) sends files with STOW-RS and checks the server's answer
  instance by instance.

Failures are :class:`PacsError` (a :class:`~medsam.errors.MedSAMError`: one line, exit
status 2 on the command line).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

from ..errors import MedSAMError, first_line, install_hint

#: the environment variables :func:`pacs_server` reads
ENV_URL, ENV_USER, ENV_PASSWORD, ENV_TOKEN = "MEDSAM_PACS_URL", "MEDSAM_PACS_USER", "MEDSAM_PACS_PASSWORD", \
    "MEDSAM_PACS_TOKEN"
ENV_VERIFY, ENV_CONFIG = "MEDSAM_PACS_VERIFY", "MEDSAM_PACS_CONFIG"
#: the config file read when no other is named
DEFAULT_CONFIG = Path("~/.config/medsam/pacs.json")
#: HTTP answers worth another try (with backoff)
RETRY_STATUSES = (429, 502, 503, 504)
_SCHEMES = {"dicomweb": "http", "dicomwebs": "https", "http": "http", "https": "https"}


class PacsError(MedSAMError):
    """A PACS could not be searched, read from or written to: unreachable, refused the
    credentials, has no such study, answered with something that is not DICOM, or refused
    what was sent. The message names the server (its address, never its credentials)."""


@dataclass(frozen=True)
class PacsServer:
    """One DICOMweb server.

    Attributes:
        url: the service root, ``http(s)://HOST:PORT/PATH``.
        username, password: HTTP basic auth (both, or neither).
        token: a bearer token (instead of basic auth).
        verify: check the server's TLS certificate (True), or the path of a CA bundle to
            check it against; False turns the check off.
        timeout: seconds to wait for a connection or a byte of an answer.
        retries: further tries after a connection error, a timeout, or a 429/502/503/504
            answer, 0.5 s, 1 s, 2 s, ... apart.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = 30.0
    retries: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", service_url(self.url))
        if (self.username is None) != (self.password is None):
            raise PacsError(f"{self.describe()}: basic auth needs both a user name and a password")
        if self.token is not None and self.username is not None:
            raise PacsError(f"{self.describe()}: give a user name and password or a token, not both")

    def describe(self) -> str:
        """The server as messages name it: its address, no credentials."""
        return self.url

    def client(self) -> Any:
        """A ``dicomweb_client.DICOMwebClient`` on a session with these credentials, TLS
        setting and retries."""
        try:
            import requests
            from dicomweb_client import DICOMwebClient
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry
        except ImportError:
            raise MedSAMError(f"reading from a PACS needs dicomweb-client: {install_hint('pacs')}") from None
        session = requests.Session()
        n = self.retries
        retry = Retry(total=n, connect=n, read=n, status=n, backoff_factor=0.5, status_forcelist=RETRY_STATUSES,
                      allowed_methods=None, raise_on_status=False)
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        # the session's own settings must hold: with trust_env, requests would let
        # REQUESTS_CA_BUNDLE override a configured CA bundle, or verify=False
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(self.url)
        session.verify = self.verify if self.verify is not True else \
            (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True)
        if self.username is not None and self.password is not None:
            session.auth = (self.username, self.password)
        if self.token is not None:
            session.headers["Authorization"] = f"Bearer {self.token}"
        client = DICOMwebClient(self.url, session=session, timeout=self.timeout)
        client.set_http_retry_params(retry=False)   # its own retries (any error, 5 tries) would add to ours
        return client


def service_url(address: str) -> str:
    """``dicomweb(s)://HOST:PORT/PATH`` or ``http(s)://...`` -> the ``http(s)://`` service
    root (no trailing slash). A user name or password in the address is refused: it would
    end up in shell histories and logs."""
    parts = urlsplit(address.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise PacsError(f"{address!r} is not a DICOMweb address (dicomweb://HOST:PORT/PATH, "
                        f"dicomwebs://... for TLS, or http(s)://...)")
    if parts.username is not None or parts.password is not None:
        shown = urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path,
                            "", ""))
        raise PacsError(f"{shown}: credentials go in the environment ({ENV_USER}, {ENV_PASSWORD} or {ENV_TOKEN}) "
                        f"or the PACS config file, never in the address")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def uid_name(uid: str) -> str:
    """A UID as a file or folder name (the case's name of a retrieved series)."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in uid)[:128] or "series"


def is_dicomweb_address(text: str) -> bool:
    """Whether ``text`` names a DICOMweb server (``dicomweb://`` or ``dicomwebs://``)."""
    return urlsplit(str(text)).scheme.lower() in ("dicomweb", "dicomwebs")


def pacs_server(url: str | None = None, config: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None) -> PacsServer:
    """The server to use: ``url`` (else the config file's or ``MEDSAM_PACS_URL``), with
    credentials and settings from the config file, overridden by the environment.

    The config file (``config``, else ``MEDSAM_PACS_CONFIG``, else
    ``~/.config/medsam/pacs.json`` when it exists) is JSON:
    ``{"url": ..., "username": ..., "password": ..., "token": ..., "verify": true | "ca.pem",
    "timeout": 30, "retries": 3}``. The environment: ``MEDSAM_PACS_USER``,
    ``MEDSAM_PACS_PASSWORD``, ``MEDSAM_PACS_TOKEN``, ``MEDSAM_PACS_VERIFY`` (``0`` turns the
    TLS check off; a path names a CA bundle).
    """
    env = os.environ if env is None else env
    settings: dict[str, Any] = {}
    named = config if config is not None else env.get(ENV_CONFIG)
    path = Path(named).expanduser() if named else DEFAULT_CONFIG.expanduser()
    if named or path.is_file():
        settings = _read_config(path)
    for key, var in (("url", ENV_URL), ("username", ENV_USER), ("password", ENV_PASSWORD), ("token", ENV_TOKEN)):
        if env.get(var):
            settings[key] = env[var]
    if env.get(ENV_VERIFY):
        value = env[ENV_VERIFY]
        settings["verify"] = False if value.lower() in ("0", "false", "no") else \
            True if value.lower() in ("1", "true", "yes") else value
    if url is not None:
        settings["url"] = url
    if not settings.get("url"):
        raise PacsError(f"no PACS named: give its address, or set {ENV_URL} or the config file's \"url\"")
    return PacsServer(settings["url"], settings.get("username"), settings.get("password"), settings.get("token"),
                      settings.get("verify", True), float(settings.get("timeout", 30.0)),
                      int(settings.get("retries", 3)))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PacsError(f"{path}: PACS config file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PacsError(f"{path}: not a readable JSON PACS config ({first_line(exc)})") from None
    known = {"url", "username", "password", "token", "verify", "timeout", "retries"}
    if not isinstance(data, dict) or set(data) - known:
        extra = sorted(set(data) - known) if isinstance(data, dict) else []
        raise PacsError(f"{path}: a PACS config is a JSON object with the keys {', '.join(sorted(known))}"
                        + (f"; unknown: {', '.join(extra)}" if extra else ""))
    return data


# ---------------------------------------------------------------------- search

#: attribute keyword -> DICOM tag of what a search row shows
_FIELDS = {"StudyInstanceUID": "0020000D", "SeriesInstanceUID": "0020000E", "PatientID": "00100020",
           "StudyDate": "00080020", "Modality": "00080060", "StudyDescription": "00081030",
           "SeriesDescription": "0008103E", "NumberOfSeriesRelatedInstances": "00201209",
           "SeriesNumber": "00200011"}


def find_series(server: PacsServer, patient_id: str | None = None, date: str | None = None,
                modality: str | None = None, description: str | None = None,
                study: str | None = None) -> list[dict[str, Any]]:
    """Series on ``server`` matching every filter given (QIDO-RS), one dict per series with
    ``study``, ``series``, ``patient_id``, ``date`` (YYYYMMDD), ``modality``,
    ``description`` (the series', else the study's) and ``instances``. ``date`` is a DICOM
    date or range (``20240101-20241231``); ``description`` may hold ``*`` wildcards."""
    filters: dict[str, Any] = {}
    if patient_id:
        filters["PatientID"] = patient_id
    if date:
        filters["StudyDate"] = date
    if modality:
        filters["Modality"] = modality
    if description:
        filters["SeriesDescription"] = description
    if study:
        filters["StudyInstanceUID"] = study
    found = _call(server, study or "", lambda c: c.search_for_series(
        search_filters=filters, fields=list(_FIELDS), get_remaining=True))
    rows = [_row(item) for item in found]
    return sorted(rows, key=lambda r: (r["patient_id"], r["date"], r["study"], r["series_number"], r["series"]))


def _row(item: Mapping[str, Any]) -> dict[str, Any]:
    def value(name: str) -> Any:
        values = (item.get(_FIELDS[name]) or {}).get("Value") or [None]
        return values[0]

    number = value("SeriesNumber")
    return {"study": value("StudyInstanceUID") or "", "series": value("SeriesInstanceUID") or "",
            "patient_id": value("PatientID") or "", "date": value("StudyDate") or "",
            "modality": value("Modality") or "",
            "description": value("SeriesDescription") or value("StudyDescription") or "",
            "instances": int(value("NumberOfSeriesRelatedInstances") or 0),
            "series_number": int(number) if number is not None else 0}


# ---------------------------------------------------------------------- retrieve and store

def retrieve_series(server: PacsServer, study: str, series: str, folder: str | os.PathLike,
                    max_bytes: int | None = None) -> Path:
    """Retrieve one series (WADO-RS) into the new ``folder``, one ``.dcm`` file per
    instance; returns the folder. ``max_bytes``: the most its files may take on disk.

    Raises:
        PacsError: the server cannot be reached or refuses, the series is not there, or
            what came is not the whole series (a part that is not DICOM, an instance of
            another series, fewer instances than the server's search counts); ``folder``
            is then removed.
    """
    where = f"{server.describe()}: study {study} series {series}"
    listed = [r for r in find_series(server, study=study) if r["series"] == series]
    if not listed:
        raise PacsError(f"{where}: no such series on the server")
    expected = listed[0]["instances"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=False)
    try:
        count = written = 0
        # any transfer syntax, as stored (the server need not transcode); pydicom's warnings on
        # a truncated part are not shown: a part that is not whole is this function's error
        parts = _call(server, study, lambda c: c.iter_series(study, series, media_types=(("application/dicom", "*"),)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for ds in parts:
                _check_instance(ds, study, series, where)
                count += 1
                target = folder / f"{count:05d}.dcm"
                tmp = target.with_name(f".{target.name}.tmp")
                ds.save_as(tmp, enforce_file_format=True)
                os.replace(tmp, target)
                written += target.stat().st_size
                if max_bytes is not None and written > max_bytes:
                    raise PacsError(f"{where}: the series is larger than the {max_bytes / 2**20:.0f} MiB "
                                    f"that may be retrieved here")
        if count == 0 or (expected and count != expected):
            raise PacsError(f"{where}: the server sent {count} of the series' {expected} instances")
    except PacsError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise PacsError(f"{where}: the series could not be read ({_reason(exc)})") from None
    return folder


def _check_instance(ds: Any, study: str, series: str, where: str) -> None:
    if not hasattr(ds, "SOPInstanceUID") or "PixelData" not in ds:
        raise PacsError(f"{where}: the server sent a part that is not a whole DICOM image (a body that is "
                        f"not DICOM, or a connection closed in the middle of the series)")
    if str(ds.get("StudyInstanceUID", "")) != study or str(ds.get("SeriesInstanceUID", "")) != series:
        raise PacsError(f"{where}: the server sent an instance of another series "
                        f"({ds.get('SeriesInstanceUID', '?')})")


def store_files(server: PacsServer, paths: Iterable[str | os.PathLike]) -> list[str]:
    """Send DICOM files to ``server`` (STOW-RS) and check that it has them; returns their
    SOP instance UIDs.

    A server's answer is not taken on trust: each instance is looked up afterwards (QIDO-RS),
    because some servers answer that they stored an instance that a filter of theirs
    refused (Orthanc 1.10 does, for an instance its Lua ``ReceivedInstanceFilter`` refused).

    Raises:
        PacsError: the server cannot be reached, refuses the request, reports an instance
            it did not store, or does not have an instance after storing it.
    """
    import pydicom

    datasets = [pydicom.dcmread(p) for p in paths]
    if not datasets:
        return []
    study = str(datasets[0].StudyInstanceUID)
    answer = _call(server, study, lambda c: c.store_instances(datasets))
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
        raise PacsError(f"{server.describe()}: study {study}: the server refused {len(failed)} of "
                        f"{len(datasets)} instances (failure reason {', '.join(reasons)})")
    missing = 0
    for (study_uid, series_uid), uids in _by_series(datasets).items():
        found = _call(server, study_uid, lambda c: c.search_for_instances(
            study_uid, series_uid, fields=["00080018"], get_remaining=True))
        have = {((item.get("00080018") or {}).get("Value") or [None])[0] for item in found}
        missing += len(uids - have)
    if missing:
        raise PacsError(f"{server.describe()}: study {study}: the server answered that it stored the "
                        f"{len(datasets)} instance{'s' if len(datasets) != 1 else ''}, but {missing} of them "
                        f"are not on it (refused by the server's own rules)")
    return [str(ds.SOPInstanceUID) for ds in datasets]


def _by_series(datasets: Iterable[Any]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for ds in datasets:
        out.setdefault((str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)), set()).add(str(ds.SOPInstanceUID))
    return out


def _call(server: PacsServer, study: str, request: Any) -> Any:
    """``request(client)``, with the library's and the network's failures as one
    :class:`PacsError` line naming the server and the study."""
    try:
        return request(server.client())
    except PacsError:
        raise
    except MedSAMError:
        raise
    except Exception as exc:
        what = f"{server.describe()}" + (f": study {study}" if study else "")
        raise PacsError(f"{what}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """One line for a failed request: the HTTP status in words, or the network's failure,
    with nothing of the request's credentials."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status == 401 or status == 403:
        return f"the server refused the credentials (HTTP {status}); check {ENV_USER}/{ENV_PASSWORD} " \
               f"or {ENV_TOKEN}, or the PACS config file"
    if status == 404:
        return "not found on the server (HTTP 404)"
    if status is not None:
        return f"the server answered HTTP {status} {getattr(response, 'reason', '') or ''}".rstrip()
    name = type(exc).__name__
    media = re.search(r'Unexpected media type: "([^"]*)"', str(exc))
    if media:
        return f"the server answered with {media.group(1) or 'no media type'}, not DICOM"
    if "SSL" in name or "SSL" in str(exc):
        return "the server's TLS certificate could not be verified"
    if "Timeout" in name or "timed out" in str(exc):
        return "the server did not answer in time"
    if "Connection" in name or "Chunked" in name or "Protocol" in name or "IncompleteRead" in str(exc):
        return "the connection failed or was closed before the answer was complete"
    return first_line(exc)
