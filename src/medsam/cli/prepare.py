"""``medsam prepare``: curate images and masks into a training set."""

from __future__ import annotations

import argparse

HELP = "curate a dataset description into a training set (uint8 slices + manifest)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("description", help="dataset description file (.json, or .yaml with "
                        "the 'train' extra); see docs/training.md")
    parser.add_argument("-o", "--out", required=True, help="output folder (created; an existing "
                        "one is resumed or extended)")
    parser.add_argument("-j", "--workers", type=int, default=0,
                        help="worker processes over cases (0 = this process)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard earlier results in the output folder and start again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..datasets.description import load_description
    from ..errors import InputError
    from ..training.prepare import prepare

    if args.workers < 0:
        raise InputError(f"--workers must be 0 or more, got {args.workers}")
    description = load_description(args.description)
    summary = prepare(description, args.out, workers=args.workers, overwrite=args.overwrite,
                      progress=not args.no_progress)
    counts = ", ".join(f"{k} {v}" for k, v in summary.objects.items())
    print(f"{summary.manifest}: objects per split: {counts}; cases processed "
          f"{summary.cases_processed}, reused {summary.cases_reused}, failed "
          f"{len(summary.failures)}")
    for dataset, case, error in summary.failures:
        print(f"failed: {dataset}/{case}: {error}")
    return 0
