"""``medsam report``: one folder with summary tables, paired tests, box plots
and volume agreement, and an index.html / index.md to open."""

from __future__ import annotations

import argparse
from pathlib import Path

from .compare import _names

HELP = "write an evaluation report folder (tables, tests, plots, index.html) from result CSVs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", type=Path, help="result CSVs from `medsam evaluate`")
    parser.add_argument("-o", "--output", required=True, type=Path, help="report folder to create")
    parser.add_argument("--names", type=_names, help="comma-separated method names, one per CSV")
    parser.add_argument("--metrics", type=_names, default=["dsc", "nsd"],
                        help="metrics to test and plot (default dsc,nsd)")
    parser.add_argument("--correction", choices=["holm", "bh"], default="holm",
                        help="multiple-testing correction (default holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="test only the cases all methods have (default: missing cases are an error)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.report import ReportConfig, build_report
    from ..evaluation.results import load_tables

    bad = [m for m in args.metrics if m not in ("dsc", "nsd", "hd95")]
    if bad:
        raise InputError(f"--metrics: unknown metric(s) {', '.join(bad)}; choose from dsc, nsd, hd95")
    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {args.alpha}")
    tables, sources = load_tables(args.results, args.names)
    config = ReportConfig(tuple(args.metrics), args.correction, args.alpha, args.allow_missing)
    index = build_report(tables, args.output, config, overwrite=args.overwrite, sources=sources)
    print(f"report written: {index}")
    return 0
