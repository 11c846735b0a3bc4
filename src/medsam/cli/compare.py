"""``medsam compare``: paired Wilcoxon tests between methods' result CSVs, with
a multiple-testing correction, and box plots per task and method."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import finite_float

HELP = "compare methods on the same cases: Wilcoxon signed-rank tests (Holm/BH corrected) and box plots"


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",")]
    if any(not n for n in names):
        raise argparse.ArgumentTypeError(f"empty name in {text!r}")
    return names


def add_test_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``compare`` and ``report``: the result CSVs and the tests."""
    parser.add_argument("results", nargs="+", type=Path, help="result CSVs from `medsam evaluate`")
    parser.add_argument("--names", type=_names, help="comma-separated method names, one per CSV")
    parser.add_argument("--metrics", type=_names, default=["dsc", "nsd"],
                        help="metrics to test, comma-separated from dsc,nsd,hd95 (default dsc,nsd)")
    parser.add_argument("--correction", choices=["holm", "bh"], default="holm",
                        help="multiple-testing correction: Holm-Bonferroni (default) or Benjamini-Hochberg")
    parser.add_argument("--alpha", type=finite_float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="test only the cases all methods have (default: missing cases are an error)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="read tables of evaluations that failed some cases (default: refused)")
    parser.add_argument("--unit", choices=["image", "object"], default="image",
                        help="unit of analysis: one value per image or volume, the mean over its objects "
                             "(default), or every object (case IMAGE#N) as a case")


def check_test_arguments(args: argparse.Namespace) -> None:
    from ..errors import InputError
    from ..metrics.case import METRIC_NAMES

    bad = [m for m in args.metrics if m not in METRIC_NAMES]
    if bad:
        raise InputError(f"--metrics: unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRIC_NAMES)}")
    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {args.alpha}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_test_arguments(parser)
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help="folder for comparison.csv, comparison.md and box plots")
    parser.add_argument("--no-plots", action="store_true", help="skip the box plots")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.compare import compare_methods, comparison_markdown, write_comparison
    from ..evaluation.results import load_tables
    from ..evaluation.summary import tolerance_description
    from ..fileutil import check_writable_output, committed_together

    check_test_arguments(args)
    tables, _ = load_tables(args.results, args.names, args.allow_incomplete)
    tolerance = tolerance_description(r for rows in tables.values() for r in rows)
    out = args.output
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder")
    files = [out / "comparison.csv", out / "comparison.md"]
    if not args.no_plots:
        files += [out / f"boxplot_{m}.png" for m in args.metrics]
    for f in files:
        check_writable_output(f, args.overwrite)
    rows = compare_methods(tables, args.metrics, args.correction, args.alpha, args.allow_missing,
                           unit=args.unit)
    with committed_together(args.overwrite):   # the tables and the plots, or none
        write_comparison(rows, files[0], files[1], args.alpha, tolerance)
        if not args.no_plots:
            from ..evaluation.report import write_box_plots

            write_box_plots(tables, args.metrics, out, args.unit)
    print(comparison_markdown(rows, args.alpha, tolerance), end="")
    print(f"written to {out}/")
    return 0
