"""Named pretrained weights: where they come from, where they are cached, how they
are downloaded and verified.

Every entry of :data:`WEIGHTS` is a frozen :class:`WeightsEntry`. Files are cached
in :func:`weights_dir` (``$MEDSAM_HOME/weights``; ``MEDSAM_HOME`` defaults to
``$XDG_CACHE_HOME/medsam`` or ``~/.cache/medsam``). A download streams into a
temporary file in that folder, is checked against the published checksum and is
renamed to its final name only when the check passes; on any failure nothing is
left behind.

Checksums: Meta does not print checksums in the segment-anything README, but each
SAM file name ends with the first 6 hex digits of the file's MD5 (``sam_vit_b_01ec64``),
and the full MD5 values below begin with those digits. Zenodo publishes the MD5 of
every file of a record, which covers ``medsam_vit_b``. ``lite_medsam`` is shared
only through Google Drive with no checksum; for it we check that the file is a
PyTorch checkpoint (not, say, an HTML error page) and say so in the listing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ._version import __version__
from .errors import InputError, MedSAMError, WeightsDownloadError


@dataclass(frozen=True)
class WeightsEntry:
    """One downloadable checkpoint.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``, or None when the
    publisher gives none (``note`` then says what is checked instead).
    ``size_bytes`` is the exact file size where known, else None.
    ``transform`` names the preprocessing the weights were trained with
    (a key of :data:`medsam.transforms.TRANSFORMS`).
    """

    name: str
    filename: str
    url: str
    variant: str
    transform: str
    checksum: str | None
    size_bytes: int | None
    description: str
    source: str
    note: str = ""


def _sam_entry(variant: str, md5: str, size_bytes: int | None, description: str) -> WeightsEntry:
    """Meta's SAM checkpoint of ``variant``; its file name ends with the MD5's first 6 digits."""
    filename = f"sam_{variant}_{md5[:6]}.pth"
    return WeightsEntry(
        name=f"sam_{variant}", filename=filename,
        url=f"https://dl.fbaipublicfiles.com/segment_anything/{filename}",
        variant=variant, transform="sam", checksum=f"md5:{md5}", size_bytes=size_bytes,
        description=description,
        source="https://github.com/facebookresearch/segment-anything#model-checkpoints",
        note="MD5 not printed by Meta; its first 6 digits are the file name's suffix",
    )


WEIGHTS: dict[str, WeightsEntry] = {
    "sam_vit_b": _sam_entry("vit_b", "01ec64d29a2fca3f0661936605ae66f8", 375_042_383,
                            "Meta's SAM ViT-B (the paper's SAM baseline), 358 MiB"),
    "sam_vit_l": _sam_entry("vit_l", "0b3195507c641ddb6910d2bb5adee89c", None,
                            "Meta's SAM ViT-L, about 1.2 GB"),
    "sam_vit_h": _sam_entry("vit_h", "4b8939a88964f0f4ff5f5b2642c598a6", None,
                            "Meta's SAM ViT-H, about 2.4 GB"),
    "medsam_vit_b": WeightsEntry(
        name="medsam_vit_b",
        filename="medsam_vit_b.pth",
        url="https://zenodo.org/records/10689643/files/medsam_vit_b.pth?download=1",
        variant="vit_b",
        transform="medsam",
        checksum="md5:3bb6db55bd0c9ca30b61248bca72f8d6",
        size_bytes=None,
        description="MedSAM ViT-B (Ma et al. 2024), about 358 MiB",
        source="https://github.com/bowang-lab/MedSAM (README links a Google Drive folder; "
               "Zenodo record 10.5281/zenodo.10689643 holds the same file for direct download)",
        note="MD5 as published on the Zenodo record",
    ),
    "lite_medsam": WeightsEntry(
        name="lite_medsam",
        filename="lite_medsam.pth",
        url="https://drive.usercontent.google.com/download?id=18Zed-TUTsmr2zc5CHUWd5Tu13nb6vq6z"
            "&export=download",
        variant="lite",
        transform="litemedsam",
        checksum=None,
        size_bytes=None,
        description="LiteMedSAM (TinyViT encoder, 256x256 input), about 38 MiB",
        source="https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM (Google Drive file "
               "18Zed-TUTsmr2zc5CHUWd5Tu13nb6vq6z)",
        note="no checksum published; only checked to be a PyTorch checkpoint file",
    ),
}

CHUNK_SIZE = 1 << 20


def cache_dir() -> Path:
    """The medsam cache folder: ``$MEDSAM_HOME``, else ``$XDG_CACHE_HOME/medsam``,
    else ``~/.cache/medsam`` (``%LOCALAPPDATA%/medsam`` on Windows). Not created here."""
    env = os.environ.get("MEDSAM_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "medsam"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "medsam"


def weights_dir() -> Path:
    """Folder holding downloaded checkpoints: ``cache_dir() / "weights"``."""
    return cache_dir() / "weights"


def get_entry(name: str) -> WeightsEntry:
    """The registry entry called ``name``; :class:`InputError` listing the known names otherwise."""
    try:
        return WEIGHTS[name]
    except KeyError:
        known = ", ".join(sorted(WEIGHTS))
        raise InputError(f"unknown weights name {name!r}; known names: {known}") from None


def cached_path(name: str) -> Path:
    """Where the file of ``name`` lives once downloaded (it may not exist)."""
    return weights_dir() / get_entry(name).filename


def _manual_instructions(entry: WeightsEntry, url: str) -> str:
    return (f"download {url} on a machine with internet access and put it at "
            f"{weights_dir() / entry.filename} (or set MEDSAM_HOME to a folder whose "
            f"'weights' subfolder holds {entry.filename})")


def get_weights_path(name: str, download: bool = False) -> Path:
    """Path of the cached checkpoint ``name``.

    When it is not cached: downloads it if ``download`` is true, otherwise raises
    :class:`MedSAMError` saying which file to put where.
    """
    entry = get_entry(name)
    path = weights_dir() / entry.filename
    if path.is_file():
        return path
    if download:
        return _download(name)
    raise MedSAMError(
        f"weights {name!r} are not in the cache ({path} does not exist); run "
        f"`medsam weights download {name}`, or {_manual_instructions(entry, entry.url)}")


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    if algo not in ("md5", "sha256") or not digest:
        raise ValueError(f"checksum must be 'md5:<hex>' or 'sha256:<hex>', got {checksum!r}")
    return algo, digest.lower()


def _looks_like_torch_checkpoint(path: Path) -> bool:
    """True for a zip-format (torch >= 1.6) or legacy pickle-format torch file."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _fetch(url: str, dest: Path, algo: str, timeout: float, progress: bool,
           label: str) -> tuple[str, int]:
    """Stream ``url`` into ``dest``; return (hex digest, byte count)."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"medsam/{__version__}"})
    digest = hashlib.new(algo)
    count = 0
    with contextlib.closing(urllib.request.urlopen(request, timeout=timeout)) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=label,
                                           disable=not progress) as bar:
            while True:
                chunk = response.read(CHUNK_SIZE)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                count += len(chunk)
                bar.update(len(chunk))
    if total is not None and count != total:
        raise WeightsDownloadError(
            f"download of {url} stopped after {count} of {total} bytes; try again")
    return digest.hexdigest(), count


def download(name: str, url: str | None = None, force: bool = False, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download the checkpoint ``name`` into :func:`weights_dir` and return its path.

    ``url`` replaces the registry address (a mirror); the file must still match the
    registry checksum. An existing cached file is kept unless ``force``. The data go
    to a temporary file in the cache folder, renamed only after the checksum (or,
    for entries without one, the checkpoint-format check) passes; on failure the
    temporary file is removed and :class:`WeightsDownloadError` explains what to do.
    """
    entry = get_entry(name)
    url = url or entry.url
    final = weights_dir() / entry.filename
    if final.is_file() and not force:
        return final
    algo, expected = _parse_checksum(entry.checksum) if entry.checksum else ("sha256", None)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            actual, count = _fetch(url, tmp, algo, timeout, progress, entry.filename)
        except urllib.error.HTTPError as exc:
            raise WeightsDownloadError(
                f"could not download weights {name!r}: HTTP {exc.code} {exc.reason} from {url}; "
                f"{_manual_instructions(entry, entry.url)}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise WeightsDownloadError(
                f"could not reach {url} ({reason}); this machine may be offline: "
                f"{_manual_instructions(entry, entry.url)}") from None
        if entry.size_bytes is not None and count != entry.size_bytes:
            raise WeightsDownloadError(
                f"downloaded {entry.filename} from {url} has {count} bytes, expected "
                f"{entry.size_bytes}; the file was discarded")
        if expected is not None and actual != expected:
            raise WeightsDownloadError(
                f"downloaded {entry.filename} from {url} has {algo} {actual}, expected "
                f"{expected}; the file is corrupt or not the published one and was discarded")
        if expected is None and not _looks_like_torch_checkpoint(tmp):
            raise WeightsDownloadError(
                f"downloaded {entry.filename} from {url} is not a PyTorch checkpoint "
                f"(the server may have sent an error page); the file was discarded")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return final


def verify(name: str, path: str | os.PathLike | None = None) -> bool:
    """Recompute the checksum of a cached (or given) file of ``name``; True when it
    matches, or when the entry has no checksum and the file is a torch checkpoint."""
    entry = get_entry(name)
    path = Path(path) if path is not None else weights_dir() / entry.filename
    if not path.is_file():
        raise MedSAMError(f"{path}: no such file")
    if entry.checksum is None:
        return _looks_like_torch_checkpoint(path)
    algo, expected = _parse_checksum(entry.checksum)
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected


_download = download  # get_weights_path's parameter ``download`` shadows the function
