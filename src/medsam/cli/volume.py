"""``medsam volume``: label volumes (mL) of masks, or agreement of predicted
with reference volumes from a result CSV (Pearson r with CI, Bland-Altman,
scatter and Bland-Altman plots)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import finite_float

HELP = "tumour volumes in mL per label, or predicted-vs-reference volume agreement with plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("masks", nargs="*", type=Path, help="mask files (any format medsam reads)")
    parser.add_argument("-o", "--output", type=Path,
                        help="CSV of the volumes; with --agreement: folder for the statistics and plots")
    parser.add_argument("--agreement", type=Path, metavar="RESULTS_CSV",
                        help="result CSV of `medsam evaluate`: compare its predicted and reference volumes")
    parser.add_argument("--confidence", type=finite_float, default=0.95, help="confidence level of the r interval")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _mask_volumes(args: argparse.Namespace) -> int:
    from ..evaluation.volumes import file_volumes
    from ..fileutil import check_writable_output, committed_together, write_csv
    from ..metrics.volumes import PIXEL_UNITS

    if args.output is not None:
        check_writable_output(args.output, args.overwrite)
    rows = []
    for path in args.masks:
        volumes, geometry = file_volumes(path)
        if not geometry.spacing_known:
            print(f"{path}: no physical pixel size in the file; sizes are pixel counts")
        if not volumes:
            print(f"{path}: no foreground labels")
        for v in volumes:
            size = "" if v.unit in PIXEL_UNITS else f"\t{v.volume:.4f} {v.unit}"
            print(f"{path}\tlabel {v.label}\t{v.voxels} {'voxels' if geometry.ndim == 3 else 'pixels'}{size}")
            rows.append([str(path), v.label, v.voxels, v.volume, v.unit])
    if args.output is not None:
        with committed_together(args.overwrite):
            write_csv(args.output, ["file", "label", "voxels", "volume", "unit"], rows)
        print(f"written to {args.output}")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.results import read_results
    from ..evaluation.volumes import AGREEMENT_COLUMNS, volume_agreement, volume_pairs, write_agreement
    from ..fileutil import check_writable_output, committed_together, write_csv

    if args.output is None:
        raise InputError("--agreement needs -o FOLDER for the statistics and plots")
    files = [args.output / n for n in ("volume_agreement.csv", "volumes.png", "bland_altman.png")]
    for f in files:
        check_writable_output(f, args.overwrite)
    rows = read_results(args.agreement)
    pred, ref = volume_pairs(rows)
    if pred.size < 4:
        raise InputError(f"{args.agreement}: {pred.size} 3D label volumes with a non-empty reference; "
                         f"volume agreement needs at least 4")
    try:
        agreement = volume_agreement(pred, ref, args.confidence)
    except ValueError as exc:
        raise InputError(f"{args.agreement}: {exc}") from None
    method = rows[0].method if rows else ""
    with committed_together(args.overwrite):
        write_csv(files[0], list(AGREEMENT_COLUMNS), [agreement.row(method)])
        write_agreement(pred, ref, agreement, files[1], files[2])
    print(agreement.describe())
    print(f"written to {args.output}/")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError

    if args.agreement is not None and args.masks:
        raise InputError("give mask files or --agreement RESULTS_CSV, not both")
    if args.agreement is None and not args.masks:
        raise InputError("give one or more mask files, or --agreement RESULTS_CSV")
    if not 0 < args.confidence < 1:
        raise InputError(f"--confidence must be in (0, 1), got {args.confidence}")
    return _agreement(args) if args.agreement is not None else _mask_volumes(args)
