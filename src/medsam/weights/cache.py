"""The local cache of named weights: where files live, fetching and verifying them.

Files are cached in :func:`weights_dir` (``$MEDSAM_HOME/weights``; ``MEDSAM_HOME``
defaults to ``$XDG_CACHE_HOME/medsam`` or ``~/.cache/medsam``). :func:`download`
tries the entry's sources in order; each writes into a temporary file in that
folder, which is checked against the published size and checksum and renamed to
its final name only when the check passes. On any failure nothing is left behind
and the next source is tried; when every source fails, one message says what each
source answered and which file to put where by hand.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ..errors import MedSAMError, WeightsDownloadError
from .registry import DEFAULT_WEIGHTS, WEIGHTS, WeightsEntry, get_entry
from .sources import CHUNK_SIZE, Source, SourceAbsent, SourceUnavailable, UrlSource


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


def bundled_path(entry: WeightsEntry) -> Path:
    """The file of a weights entry shipped inside the package (``entry.bundled``)."""
    import importlib.resources

    assert entry.bundled is not None
    return Path(str(importlib.resources.files("medsam").joinpath(entry.bundled)))


def cached_path(name: str) -> Path:
    """Where the file of ``name`` lives once fetched (it may not exist); the package's own
    file for weights shipped with it."""
    entry = get_entry(name)
    if entry.bundled is not None:
        return bundled_path(entry)
    return weights_dir() / entry.filename


def is_cached(name: str) -> bool:
    """True when the file of ``name`` is in the cache."""
    return cached_path(name).is_file()


def manual_instructions(entry: WeightsEntry) -> str:
    """How to install ``entry``'s file by hand: its name, size, checksum and place."""
    facts = [f"{entry.size_bytes:,} bytes" if entry.size_bytes else "",
             entry.checksum.replace(":", " ", 1) if entry.checksum else ""]
    facts_text = ", ".join(f for f in facts if f)
    where = "; ".join(s.describe() for s in entry.sources)
    return (f"to install it by hand, put the file {entry.filename}"
            + (f" ({facts_text})" if facts_text else "")
            + f" at {weights_dir() / entry.filename} (or set MEDSAM_HOME to a folder whose "
            f"'weights' subfolder holds it); it is published at: {where}; or use a checkpoint "
            f"file's path instead of the name {entry.name!r}")


def get_weights_path(name: str | None = None, download: bool = False,
                     progress: bool = True) -> Path:
    """Path of the cached checkpoint ``name`` (None: :data:`DEFAULT_WEIGHTS`).

    When it is not cached: fetches it if ``download`` is true (see :func:`download`),
    otherwise raises :class:`MedSAMError` saying which file to put where.
    """
    entry = get_entry(name or DEFAULT_WEIGHTS)
    if entry.bundled is not None:
        return _checked_bundle(entry)
    path = weights_dir() / entry.filename
    if path.is_file():
        return path
    if download:
        return _download(entry.name, progress=progress)
    raise MedSAMError(f"weights {entry.name!r} are not in the cache ({path} does not exist); "
                      f"{manual_instructions(entry)}")


def _checked_bundle(entry: WeightsEntry) -> Path:
    """The shipped file of ``entry``, after its size and checksum (CheckpointError when it
    is missing or damaged)."""
    from ..errors import CheckpointError

    path = bundled_path(entry)
    fix = "reinstall medsam (pip install --force-reinstall medsam) or check out the file again"
    if not path.is_file():
        raise CheckpointError(f"{path}: the weights {entry.name!r} shipped with medsam are missing; {fix}")
    try:
        check_file(entry, path, str(path))
    except SourceUnavailable:
        raise CheckpointError(f"{path}: the weights {entry.name!r} shipped with medsam are damaged "
                              f"(size or sha256 differs from the registry); {fix}") from None
    return path


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


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    """The hex digest of a file (``sha256`` or ``md5``), read in chunks."""
    digest = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(entry: WeightsEntry, path: Path, origin: str) -> None:
    """Raise :class:`SourceUnavailable` unless ``path`` is ``entry``'s published file:
    exact size and checksum where known, else at least a PyTorch checkpoint."""
    size = path.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        raise SourceUnavailable(f"{entry.filename} from {origin} has {size} bytes, expected "
                                f"{entry.size_bytes}; the file was discarded")
    if entry.checksum is not None:
        algo, expected = _parse_checksum(entry.checksum)
        actual = file_digest(path, algo)
        if actual != expected:
            raise SourceUnavailable(f"{entry.filename} from {origin} has {algo} {actual}, "
                                    f"expected {expected}; the file is corrupt or not the "
                                    f"published one and was discarded")
    elif not _looks_like_torch_checkpoint(path):
        raise SourceUnavailable(f"{entry.filename} from {origin} is not a PyTorch checkpoint "
                                f"(the server may have sent an error page); the file was "
                                f"discarded")


def _fetch_one(entry: WeightsEntry, source: Source, final: Path, progress: bool,
               timeout: float) -> None:
    """Fetch ``entry`` from ``source`` into ``final`` through a checked temporary file (the
    package's one write path: a full disk is an OutputError naming ``final``, not a
    failed source)."""
    from ..fileutil import atomic_path

    with atomic_path(final) as tmp:
        source.fetch(tmp, progress=progress, timeout=timeout, label=entry.filename)
        check_file(entry, tmp, source.describe())


def download(name: str | None = None, url: str | None = None, force: bool = False,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch the checkpoint ``name`` (None: :data:`DEFAULT_WEIGHTS`) into :func:`weights_dir`
    and return its path.

    The entry's sources are tried in order until one delivers the published file;
    ``url`` replaces them with that one address (a mirror), whose file must still
    match the registry checksum. An existing cached file is kept unless ``force``.
    With ``progress``, one line on stderr says what is fetched and where, and a
    progress bar follows.

    Raises:
        WeightsDownloadError: no source delivered the file; the message gives each
            source's answer and :func:`manual_instructions`.
    """
    entry = get_entry(name or DEFAULT_WEIGHTS)
    if entry.bundled is not None:
        return _checked_bundle(entry)
    final = weights_dir() / entry.filename
    if final.is_file() and not force:
        return final
    sources: tuple[Source, ...] = (UrlSource(url),) if url else entry.sources
    final.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        size = f" ({entry.size_bytes / 2**20:.1f} MiB)" if entry.size_bytes else ""
        print(f"medsam: fetching weights {entry.name!r}{size} into {final} (first use only)",
              file=sys.stderr, flush=True)
    failures = []
    for source in sources:
        try:
            _fetch_one(entry, source, final, progress, timeout)
            return final
        except SourceUnavailable as exc:
            failures.append(f"{source.describe()}: {exc}")
            if progress and source is not sources[-1] and not isinstance(exc, SourceAbsent):
                print(f"medsam: {failures[-1]}; trying the next source", file=sys.stderr,
                      flush=True)
    raise WeightsDownloadError(f"could not fetch weights {entry.name!r} "
                               f"({' | '.join(failures)}); {manual_instructions(entry)}")


def identify_file(path: str | os.PathLike, variant: str | None = None,
                  skip_transform: str | None = None) -> WeightsEntry | None:
    """The registered entry whose published file ``path`` is, by size (where known) and
    checksum, never by file name; None when it is none of them.

    Only entries of ``variant`` are tried, and none whose transform is
    ``skip_transform`` (the caller's default anyway), so most files are not hashed."""
    path = Path(path)
    size = path.stat().st_size
    digests: dict[str, str] = {}
    for entry in WEIGHTS.values():
        if entry.checksum is None or (variant is not None and entry.variant != variant) \
                or entry.transform == skip_transform:
            continue
        if entry.size_bytes is not None and entry.size_bytes != size:
            continue
        algo, expected = _parse_checksum(entry.checksum)
        if algo not in digests:
            digests[algo] = file_digest(path, algo)
        if digests[algo] == expected:
            return entry
    return None


def verify(name: str, path: str | os.PathLike | None = None) -> bool:
    """True when the cached (or given) file of ``name`` is the published one
    (see :func:`check_file`)."""
    entry = get_entry(name)
    path = Path(path) if path is not None else cached_path(name)
    if not path.is_file():
        raise MedSAMError(f"{path}: no such file")
    try:
        check_file(entry, path, str(path))
    except SourceUnavailable:
        return False
    return True


_download = download  # get_weights_path's parameter ``download`` shadows the function
