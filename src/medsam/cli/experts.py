"""``medsam experts``: compare a model with several human raters (paper, Fig. 2f).

Each rater (and optionally the model) is a folder of binary masks of the same
cases. Cases are matched by name; ``--case-pattern`` extracts the case name from a
file name when raters name their files differently (DRIVE: ``01_manual1.gif`` and
``01_manual2.gif`` -> ``--case-pattern '^(\\d+)_'``). The consensus is the majority
vote; every rater is scored against the consensus of the *other* raters, and the
model against the same leave-one-out consensuses and against the consensus of all.

Writes ``experts_scores.csv``, ``experts.csv``, ``experts.md`` and ``experts.png``
into the output folder (built in a temporary folder, renamed when complete).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import finite_float

HELP = "compare a model with several human raters: majority-vote consensus, leave-one-out DSC/NSD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rater", action="append", required=True, metavar="NAME=DIR",
                        help="a rater's mask folder (repeat; at least two)")
    parser.add_argument("--model", metavar="NAME=DIR", help="the model's mask folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--case-pattern", metavar="REGEX",
                        help="regular expression whose first group is the case name in a file name "
                             "(default: the file name without extension)")
    parser.add_argument("--threshold", type=finite_float, default=0.0,
                        help="foreground is value > THRESHOLD (default 0; e.g. 127 for JPEG masks)")
    parser.add_argument("--tolerance", type=finite_float, default=2.0, help="NSD tolerance in mm (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _named_folder(text: str, option: str) -> tuple[str, Path]:
    from ..errors import InputError

    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise InputError(f"{option} {text!r}: expected NAME=FOLDER")
    from ..fileutil import existing_folder

    path = existing_folder(folder, f"{option} folder '{name}'")
    return name, path


def run(args: argparse.Namespace) -> int:
    import re

    from ..errors import InputError
    from ..evaluation.experts import (
        compare_with_experts,
        expert_markdown,
        expert_table,
        load_rater_masks,
        write_expert_comparison,
    )
    from ..fileutil import atomic_folder, check_output_folder

    check_output_folder(args.output, args.overwrite)
    try:
        pattern = re.compile(args.case_pattern) if args.case_pattern else None
    except re.error as error:
        raise InputError(f"--case-pattern {args.case_pattern!r}: {error}") from None
    raters = dict(_named_folder(t, "--rater") for t in args.rater)
    if len(raters) < 2:
        raise InputError("give at least two different --rater NAME=FOLDER")
    model_name, model_dir = _named_folder(args.model, "--model") if args.model else ("model", None)
    folders = dict(raters, **({model_name: model_dir} if model_dir is not None else {}))
    read = load_rater_masks(folders, pattern, args.threshold)
    model = read.masks.pop(model_name) if model_dir is not None else None
    scores = compare_with_experts(read.masks, read.cases, spacings=read.spacings, model=model,
                                  model_name=model_name, tolerance=args.tolerance)
    with atomic_folder(args.output, args.overwrite) as tmp:
        write_expert_comparison(scores, tmp, model_name=model_name)
    print(expert_markdown(expert_table(scores, model_name)), end="")
    print(f"{len(read.cases)} cases; written to {args.output}")
    for name, names in read.missing.items():
        print(f"note: {len(names)} case(s) of '{name}' not in every folder, left out: "
              f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    return 0
