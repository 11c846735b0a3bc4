"""``medsam pacs``: a DICOMweb server's studies and series (QIDO-RS), and storing files on it
(STOW-RS).

    medsam pacs find dicomweb://127.0.0.1:8042/dicom-web --modality CT
    medsam pacs find --patient-id 12345 --date 20240101-20241231 --json
    medsam pacs store dicomweb://127.0.0.1:8042/dicom-web series_folder/

The server is the address given, else ``MEDSAM_PACS_URL`` or the config file's; credentials
come from the environment or the config file only (see ``docs/pacs.md``). Segmenting a series
on the server is ``medsam segment dicomweb://... --study UID --series UID``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "search a PACS (DICOMweb) for studies and series, and store DICOM files on it"

COLUMNS = ("patient_id", "date", "modality", "instances", "description", "study", "series")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    find = sub.add_parser("find", help="list the series matching every filter given (a table, or JSON)")
    find.add_argument("server", nargs="?", metavar="SERVER",
                      help="dicomweb://HOST:PORT/PATH (dicomwebs:// for TLS; default: $MEDSAM_PACS_URL or "
                           "the config file's url)")
    find.add_argument("--patient-id", metavar="ID")
    find.add_argument("--date", metavar="YYYYMMDD[-YYYYMMDD]", help="study date or range")
    find.add_argument("--modality", metavar="MOD", help="CT, MR, SEG, ...")
    find.add_argument("--description", metavar="TEXT", help="series description (* matches anything)")
    find.add_argument("--study", metavar="UID", help="the series of one study")
    find.add_argument("--json", action="store_true", help="print JSON (a list of series) instead of a table")
    store = sub.add_parser("store", help="send DICOM files (or the files of folders) to the server")
    store.add_argument("server", metavar="SERVER", help="dicomweb://HOST:PORT/PATH")
    store.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders of them")
    for p in (find, store):
        p.add_argument("--pacs-config", metavar="FILE",
                       help="the server's settings and credentials (JSON; default $MEDSAM_PACS_CONFIG or "
                            "~/.config/medsam/pacs.json)")


def run(args: argparse.Namespace) -> int:
    from ..io.dicomweb import find_series, pacs_server, store_files

    server = pacs_server(args.server, args.pacs_config)
    if args.pacs_command == "store":
        files = _files(args.paths)
        stored = store_files(server, files)
        print(f"stored {len(stored)} instance{'s' if len(stored) != 1 else ''} on {server.describe()}")
        return 0
    rows = find_series(server, patient_id=args.patient_id, date=args.date, modality=args.modality,
                       description=args.description, study=args.study)
    if args.json:
        print(json.dumps([{k: r[k] for k in COLUMNS} for r in rows], indent=2))
        return 0
    if not rows:
        print(f"no series on {server.describe()} match")
        return 0
    table = [list(COLUMNS)] + [[str(r[k]) for k in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip())
    return 0


def _files(paths: list[str]) -> list[Path]:
    from ..errors import InputError

    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not files:
        raise InputError(f"{', '.join(paths)}: no files to store")
    return files
