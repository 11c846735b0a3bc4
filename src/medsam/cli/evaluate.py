"""``medsam evaluate``: DSC, NSD and HD95 of a prediction folder against a
reference folder, one CSV row per case and label, plus a summary table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import finite_float

HELP = "score predicted masks against reference masks (DSC, NSD, HD95, volumes) into a CSV"


def _labels(text: str) -> tuple[int, ...]:
    try:
        labels = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"labels must be comma-separated integers, got {text!r}") from None
    if not labels or any(v <= 0 for v in labels):
        raise argparse.ArgumentTypeError(f"labels must be positive integers, got {text!r}")
    return labels


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, type=Path, help="folder of predicted masks")
    parser.add_argument("--gt", required=True, type=Path, help="folder of reference masks (matched by file name)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="result CSV to write")
    parser.add_argument("--task", help="task name written in every row (default: name of the --gt folder, or of "
                                       "the folder above it when that is named gt, labels, masks, ...)")
    parser.add_argument("--method", help="method name written in every row (default: name of the --pred folder, "
                                         "or of the folder above it when that is named pred, segs, ...)")
    parser.add_argument("--tolerance", type=finite_float, default=2.0,
                        help="NSD tolerance in mm, or in pixels for images without a pixel size (default 2)")
    parser.add_argument("--nsd-diagonal", type=finite_float, metavar="PERCENT",
                        help="images without a pixel size: NSD tolerance of PERCENT %% of the image diagonal "
                             "instead of --tolerance pixels (the same share of the image at any resolution)")
    parser.add_argument("--labels", type=_labels, help="comma-separated labels to score (default: all present)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--binary", action="store_true",
                       help="masks are binary (one foreground value each, e.g. 255); scored as label 1")
    group.add_argument("--threshold", type=finite_float,
                       help="foreground is value > THRESHOLD (lossy masks such as JPEG); scored as label 1")
    parser.add_argument("--subset", action="store_true",
                        help="score only the reference cases that have a prediction and list the others "
                             "(default: a reference case without a prediction fails the run)")
    parser.add_argument("--workers", type=int, help="parallel processes (default: number of CPUs)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _sibling(path: Path, suffix: str) -> Path:
    name = path.name[: -len(".csv")] if path.name.lower().endswith(".csv") else path.name
    return path.with_name(name + suffix)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.results import write_results
    from ..evaluation.runner import EvaluateConfig, evaluate_folders
    from ..evaluation.summary import summarize, summary_markdown, write_summary
    from ..fileutil import check_writable_output, committed_together, write_csv
    from ..metrics.volumes import PIXEL_UNITS
    from ..segmentation.cases import folder_name
    from . import CLI_HINTS

    config = EvaluateConfig(   # checks the values first
        task=args.task or folder_name(args.gt), method=args.method or folder_name(args.pred),
        tolerance=args.tolerance, diagonal_pct=args.nsd_diagonal, labels=args.labels, binary=args.binary,
        threshold=args.threshold, workers=args.workers, subset=args.subset,
    )
    outputs = {
        "results": args.output,
        "summary_csv": _sibling(args.output, ".summary.csv"),
        "summary_md": _sibling(args.output, ".summary.md"),
        "partial": _sibling(args.output, ".partial.csv"),
        "failed": _sibling(args.output, ".failed.csv"),
    }
    # The .partial/.failed files describe the latest run only: they are
    # replaced by a failed run and removed by a complete one.
    for key in ("results", "summary_csv", "summary_md"):
        check_writable_output(outputs[key], args.overwrite)
    run_ = evaluate_folders(args.pred, args.gt, config, progress=not args.quiet)
    for note in run_.notes:
        print(f"medsam evaluate: note: {note}", file=sys.stderr)
    if not run_.complete:
        for _, error in run_.failures:
            print(f"medsam evaluate: failed: {error.render(CLI_HINTS)}", file=sys.stderr)
        write_csv(outputs["failed"], ["case", "error"],
                  [(case, error.render(CLI_HINTS)) for case, error in run_.failures])
        written = ""
        if run_.rows:
            write_results(run_.rows, outputs["partial"],
                          incomplete=f"{len(run_.failures)} of {run_.n_cases} cases failed (listed in "
                                     f"{outputs['failed'].name}); evaluate every case before comparing "
                                     f"or reporting")
            written = f"; results of the other cases are in {outputs['partial']} (INCOMPLETE)"
        else:
            outputs["partial"].unlink(missing_ok=True)
        print(f"medsam evaluate: {len(run_.failures)} of {run_.n_cases} cases failed (listed in "
              f"{outputs['failed']}){written}; {args.output} was not written", file=sys.stderr)
        return 1
    summary = summarize(run_.rows)
    with committed_together(args.overwrite):   # the results and their summary, or none
        write_results(run_.rows, outputs["results"])
        write_summary(summary, outputs["summary_csv"], outputs["summary_md"])
    for key in ("partial", "failed"):
        outputs[key].unlink(missing_ok=True)
    in_pixels = sorted({r.case for r in run_.rows if r.volume_unit in PIXEL_UNITS})
    if in_pixels:
        print(f"medsam evaluate: {len(in_pixels)} case(s) have no physical pixel size: their NSD "
              f"tolerance is {args.tolerance:g} px and HD95 and sizes are in pixels", file=sys.stderr)
    print(summary_markdown(summary), end="")
    print(f"{run_.n_cases} cases, {len(run_.rows)} rows -> {args.output} "
          f"(summary: {outputs['summary_csv']}, {outputs['summary_md']})")
    return 0
