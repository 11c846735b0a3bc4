"""``medsam weights``: list, download and locate named pretrained weights."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import finite_float

if TYPE_CHECKING:
    from ..weights import WeightsEntry

HELP = "list, download or locate named pretrained weights (LiteMedSAM, MedSAM, SAM)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="show every named checkpoint, its source, checksum and cache state")
    dl = sub.add_parser("download", help="download a named checkpoint into the cache")
    dl.add_argument("name", nargs="?", help="weights name (default: the default model, "
                                            "lite_medsam; see `medsam weights list`)")
    dl.add_argument("--url", help="download from this address instead of the listed sources "
                                  "(a mirror); the file must still match the published checksum")
    dl.add_argument("--force", action="store_true", help="download again even if cached")
    dl.add_argument("--timeout", type=finite_float, default=60.0,
                    help="seconds to wait for the server (default: 60)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    path = sub.add_parser("path", help="print the cached file of a named checkpoint")
    path.add_argument("name", help="weights name (see `medsam weights list`)")
    pack = sub.add_parser("pack", help="keep only the trained parts of a run's checkpoint (prompt encoder "
                                       "and mask decoder over named base weights), as the shipped "
                                       "lite_interactive file is made")
    pack.add_argument("checkpoint", help="a training run's best.pth or last.pth")
    pack.add_argument("-o", "--output", required=True, help="the parts file to write")
    pack.add_argument("--base", default="lite_medsam",
                      help="the named weights the run started from (default: lite_medsam)")
    pack.add_argument("--overwrite", action="store_true", help="replace an existing file")


def _format_size(entry: WeightsEntry) -> str:
    if entry.size_bytes is None:
        return "unknown"
    return f"{entry.size_bytes / 2**20:.1f} MiB"


def _list() -> int:
    from .. import weights

    print(f"cache folder: {weights.weights_dir()}  (set MEDSAM_HOME to change)")
    print(f"default: {weights.DEFAULT_WEIGHTS}  (used when no weights or checkpoint are named)")
    header = ("name", "variant", "input", "cached", "size", "checksum")
    rows = []
    for entry in weights.WEIGHTS.values():
        name = entry.name + (" *" if entry.name == weights.DEFAULT_WEIGHTS else "")
        cached = "yes" if weights.is_cached(entry.name) else "no"
        checksum = entry.checksum or "none published"
        rows.append((name, entry.variant, entry.transform, cached, _format_size(entry),
                     checksum))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("(* the default)")
    print()
    for entry in weights.WEIGHTS.values():
        print(f"{entry.name}: {entry.description}")
        if entry.bundled is not None:
            print(f"    shipped: {weights.cached_path(entry.name)} (part of medsam; sha256 checked on each load)")
        elif weights.is_cached(entry.name):
            print(f"    cached:  {weights.cached_path(entry.name)}")
        for i, source in enumerate(entry.sources, start=1):
            print(f"    source {i}: {source.describe()}")
        print(f"    home:    {entry.homepage}")
        if entry.note:
            print(f"    note:    {entry.note}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .. import weights
    from ..errors import MedSAMError

    if args.weights_command == "list":
        return _list()
    if args.weights_command == "pack":
        return _pack(args)
    if args.weights_command == "download":
        path = weights.download(args.name, url=args.url, force=args.force,
                                progress=not args.quiet, timeout=args.timeout)
        print(path)
        return 0
    try:
        print(weights.get_weights_path(args.name, download=False))
    except MedSAMError as exc:
        raise MedSAMError(f"{exc} (`medsam weights download {args.name}`)") from None
    return 0


def _pack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import InputError
    from ..training.checkpointing import save_parts
    from ..weights import file_digest, get_entry

    get_entry(args.base)
    if not Path(args.checkpoint).is_file():
        raise InputError(f"{args.checkpoint}: no such file")
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out}: already exists", option="overwrite")
    save_parts(args.checkpoint, out, args.base)
    print(f"{out}: {out.stat().st_size} bytes, sha256 {file_digest(out)}")
    return 0
