"""``medsam report``: one folder with summary tables, paired tests, box plots
and volume agreement, and an index.html / index.md to open."""

from __future__ import annotations

import argparse
from pathlib import Path

from .compare import add_test_arguments, check_test_arguments

HELP = "write an evaluation report folder (tables, tests, plots, index.html) from result CSVs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_arguments(parser)
    parser.add_argument("-o", "--output", required=True, type=Path, help="report folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")


def run(args: argparse.Namespace) -> int:
    from ..evaluation.report import ReportConfig, build_report
    from ..evaluation.results import load_tables

    check_test_arguments(args)
    tables, sources = load_tables(args.results, args.names, args.allow_incomplete)
    config = ReportConfig(tuple(args.metrics), args.correction, args.alpha, args.allow_missing, unit=args.unit)
    index = build_report(tables, args.output, config, overwrite=args.overwrite, sources=sources)
    print(f"report written: {index}")
    return 0
