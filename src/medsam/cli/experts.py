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

HELP = "compare a model with several human raters: majority-vote consensus, leave-one-out DSC/NSD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rater", action="append", required=True, metavar="NAME=DIR",
                        help="a rater's mask folder (repeat; at least two)")
    parser.add_argument("--model", metavar="NAME=DIR", help="the model's mask folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--case-pattern", metavar="REGEX",
                        help="regular expression whose first group is the case name in a file name "
                             "(default: the file name without extension)")
    parser.add_argument("--threshold", type=float, default=0.0,
                        help="foreground is value > THRESHOLD (default 0; e.g. 127 for JPEG masks)")
    parser.add_argument("--tolerance", type=float, default=2.0, help="NSD tolerance in mm (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def _named_folder(text: str, option: str) -> tuple[str, Path]:
    from ..errors import InputError

    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise InputError(f"{option} {text!r}: expected NAME=FOLDER")
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{path}: {option} folder '{name}' does not exist")
    return name, path


def list_cases(folder: Path, pattern) -> dict[str, Path]:
    """Case name -> file for the files of ``folder`` (hidden files ignored)."""
    from ..errors import InputError
    from ..evaluation.runner import case_name

    cases: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if pattern is None:
            name = case_name(path)
        else:
            match = pattern.search(path.name)
            if match is None:
                continue
            name = match.group(1) if match.groups() else match.group(0)
        if name in cases:
            raise InputError(f"{folder}: two files for case {name!r}: {cases[name].name} and {path.name}")
        cases[name] = path
    if not cases:
        raise InputError(f"{folder}: no mask files" + ("" if pattern is None else
                                                        f" matching {pattern.pattern!r}"))
    return cases


def _read_binary(path: Path, threshold: float):
    import numpy as np

    from ..evaluation.runner import load_mask

    array, spacing = load_mask(path, "reference")
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.dtype == np.uint8:
        array = array[..., 0]
    return np.asarray(array) > threshold, spacing


def run(args) -> int:
    import re
    import shutil
    import tempfile

    from ..errors import InputError
    from ..evaluation.experts import compare_with_experts, expert_markdown, expert_table, \
        write_expert_comparison

    if args.output.exists() and not args.overwrite:
        raise InputError(f"{args.output}: output exists; pass --overwrite to replace it")
    try:
        pattern = re.compile(args.case_pattern) if args.case_pattern else None
    except re.error as error:
        raise InputError(f"--case-pattern {args.case_pattern!r}: {error}") from None
    raters = dict(_named_folder(t, "--rater") for t in args.rater)
    if len(raters) < 2:
        raise InputError("give at least two different --rater NAME=FOLDER")
    model_name, model_dir = _named_folder(args.model, "--model") if args.model else ("model", None)
    listed = {name: list_cases(folder, pattern) for name, folder in raters.items()}
    if model_dir is not None:
        listed[model_name] = list_cases(model_dir, pattern)
    cases = sorted(set.intersection(*(set(c) for c in listed.values())))
    if not cases:
        raise InputError("no case is present in every folder (see --case-pattern)")
    missing = {name: sorted(set(c) - set(cases)) for name, c in listed.items() if set(c) - set(cases)}

    masks: dict[str, list] = {name: [] for name in listed}
    spacings = []
    for case in cases:
        shape, spacing_seen = None, None
        for name in listed:
            mask, spacing = _read_binary(listed[name][case], args.threshold)
            if shape is not None and mask.shape != shape:
                raise InputError(f"case {case}: {listed[name][case]} has shape {mask.shape}, "
                                 f"the other masks of this case {shape}")
            shape = mask.shape
            masks[name].append(mask)
            spacing_seen = spacing_seen or spacing
        spacings.append(spacing_seen)
    model = masks.pop(model_name) if model_dir is not None else None
    scores = compare_with_experts(masks, cases, spacings=spacings, model=model, model_name=model_name,
                                  tolerance=args.tolerance)

    tmp = Path(tempfile.mkdtemp(prefix=f".{args.output.name}.", dir=args.output.parent or "."))
    try:
        write_expert_comparison(scores, tmp, model_name=model_name)
        if args.output.exists():
            shutil.rmtree(args.output)
        tmp.rename(args.output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(expert_markdown(expert_table(scores, model_name)), end="")
    print(f"{len(cases)} cases; written to {args.output}")
    for name, names in missing.items():
        print(f"note: {len(names)} case(s) of '{name}' not in every folder, left out: "
              f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}")
    return 0
