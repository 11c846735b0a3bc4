"""``medsam weights``: list, download and locate named pretrained weights."""

from __future__ import annotations

import argparse

HELP = "list, download or locate named pretrained weights (SAM, MedSAM, LiteMedSAM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="show every named checkpoint, its source, checksum and cache state")
    dl = sub.add_parser("download", help="download a named checkpoint into the cache")
    dl.add_argument("name", help="weights name (see `medsam weights list`)")
    dl.add_argument("--url", help="download from this address instead (a mirror); "
                                  "the file must still match the published checksum")
    dl.add_argument("--force", action="store_true", help="download again even if cached")
    dl.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for the server (default: 60)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    path = sub.add_parser("path", help="print the cached file of a named checkpoint")
    path.add_argument("name", help="weights name (see `medsam weights list`)")


def _format_size(entry) -> str:
    if entry.size_bytes is None:
        return "unknown"
    return f"{entry.size_bytes / 2**20:.0f} MiB"


def _list() -> int:
    from .. import weights

    print(f"cache folder: {weights.weights_dir()}  (set MEDSAM_HOME to change)")
    header = ("name", "variant", "input", "cached", "size", "checksum")
    rows = []
    for entry in weights.WEIGHTS.values():
        cached = "yes" if (weights.weights_dir() / entry.filename).is_file() else "no"
        checksum = entry.checksum or "none published"
        rows.append((entry.name, entry.variant, entry.transform, cached, _format_size(entry),
                     checksum))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print()
    for entry in weights.WEIGHTS.values():
        print(f"{entry.name}: {entry.description}")
        print(f"    url:    {entry.url}")
        print(f"    source: {entry.source}")
        if entry.note:
            print(f"    note:   {entry.note}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .. import weights

    if args.weights_command == "list":
        return _list()
    if args.weights_command == "download":
        path = weights.download(args.name, url=args.url, force=args.force,
                                progress=not args.quiet, timeout=args.timeout)
        print(path)
        return 0
    print(weights.get_weights_path(args.name, download=False))
    return 0
