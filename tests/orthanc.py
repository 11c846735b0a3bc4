"""A real Orthanc PACS for the tests (Debian's ``orthanc`` and ``orthanc-dicomweb`` packages,
which ``.ci/run`` installs): started on a free loopback port with a temporary storage folder
and HTTP basic auth on, stopped when the block ends. Also a TCP relay that cuts a series'
retrieval short, to test a server that drops the connection in the middle of a series."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "medsam", "pacs-test-password"


@dataclass(frozen=True)
class Pacs:
    """A running server: its DICOMweb address (``dicomweb://``), its REST root and credentials."""

    address: str
    rest: str
    user: str = USER
    password: str = PASSWORD

    @property
    def env(self) -> dict[str, str]:
        """The environment that gives ``medsam`` the credentials."""
        return {"MEDSAM_PACS_USER": self.user, "MEDSAM_PACS_PASSWORD": self.password}

    def get(self, path: str) -> Any:
        """A JSON answer of Orthanc's own REST API (``/series``, ``/instances``...)."""
        return self._request(path)

    def upload(self, folder: Path) -> None:
        """Store a folder's DICOM files through Orthanc's own REST API (``POST /instances``),
        not DICOMweb."""
        for path in sorted(folder.iterdir()):
            self._request("/instances", path.read_bytes())

    def _request(self, path: str, data: bytes | None = None) -> Any:
        token = b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(self.rest + path, data=data, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def orthanc(folder: Path, lua: str | None = None) -> Iterator[Pacs]:
    """Run Orthanc with its storage in ``folder``; ``lua``: a Lua script it loads (e.g. a
    ``ReceivedInstanceFilter`` that refuses some instances)."""
    if not Path(ORTHANC).exists() or not DICOMWEB_PLUGIN.exists():
        raise RuntimeError("Orthanc and its DICOMweb plugin are needed: apt-get install orthanc orthanc-dicomweb")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {"Name": "medsam-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
              "HttpPort": port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
              "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
              "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    if lua is not None:
        (folder / "filter.lua").write_text(lua)
        config["LuaScripts"] = [str(folder / "filter.lua")]
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                               cwd=folder)
    pacs = Pacs(f"dicomweb://127.0.0.1:{port}/dicom-web", f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pacs.get("/system")
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield pacs
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


WADO = re.compile(rb"GET /dicom-web/studies/[^/\s]+/series/[^/?\s]+ HTTP")


@contextmanager
def cutting_relay(target_port: int, after_bytes: int | None = None, answer: bytes | None = None,
                  retrievals: list | None = None) -> Iterator[int]:
    """A TCP relay to ``127.0.0.1:target_port``, a gateway in front of the PACS that passes
    searches and spoils a series retrieval (``GET .../studies/S/series/R``): with
    ``after_bytes``, it closes the connection once it has passed that much of the answer;
    with ``answer``, it sends these bytes (a whole HTTP response) instead of the server's.
    ``retrievals`` gets one item per series retrieval it sees. Yields its own port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve(client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", target_port))
        state = {"cut_at": None, "sent": 0}

        def up() -> None:
            try:
                while data := client.recv(65536):
                    if WADO.search(data) and retrievals is not None:
                        retrievals.append(data.split(b"\r\n", 1)[0])
                    if WADO.search(data) and answer is not None:
                        client.sendall(answer)
                        client.shutdown(socket.SHUT_RDWR)
                        upstream.close()
                        return
                    if WADO.search(data) and state["cut_at"] is None and after_bytes is not None:
                        state["cut_at"] = state["sent"] + after_bytes
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=up, daemon=True).start()
        try:
            while data := upstream.recv(65536):
                cut = state["cut_at"]
                if cut is not None and state["sent"] + len(data) >= cut:
                    client.sendall(data[:max(0, cut - state["sent"])])
                    break
                client.sendall(data)
                state["sent"] += len(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def self_signed_pem(folder: Path) -> Path:
    """A certificate for 127.0.0.1 and its key in one PEM file (openssl); the same file is the
    CA bundle a client verifies it with."""
    key, cert, pem = folder / "key.pem", folder / "cert.pem", folder / "server.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    pem.write_text(cert.read_text() + key.read_text())
    return pem


@contextmanager
def https_server(pem: Path) -> Iterator[int]:
    """A real HTTPS server (Python's, over ``ssl``) with the certificate of ``pem``, whose
    every GET is answered with an empty DICOMweb search result; yields its port. (Orthanc
    1.10.1 as Debian 12 builds it crashes on an HTTPS connection, so TLS is tested here.)"""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Empty(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pem))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
