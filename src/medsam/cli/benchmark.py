"""``medsam benchmark interactive``: the CVPR 2025 interactive 3D challenge's protocol.

Example (the objects of ``../shared/data`` the README's table reports)::

    medsam benchmark interactive --description examples/datasets/interactive_3d.json -o bench/
    medsam benchmark interactive --description D.json --datasets recist --processes -o bench/

The protocol is :mod:`medsam.evaluation.interactive`; this module only reads options,
picks the driver and prints the summary.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HELP = "benchmarks: 'interactive' runs the CVPR 2025 interactive 3D protocol (a box, then 5 clicks)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .segment import add_model_arguments

    parser.add_argument("which", choices=("interactive",), help="the benchmark to run")
    parser.add_argument("--description", required=True, metavar="FILE",
                        help="dataset description (medsam prepare's JSON/YAML) naming 3D images with "
                             "label maps, or npz files with 'gts'")
    parser.add_argument("--datasets", metavar="A,B", help="only these datasets of the description")
    parser.add_argument("--max-cases", type=int, metavar="N", help="at most N cases per dataset")
    parser.add_argument("--clicks", type=int, default=5, help="clicks after the box (default 5)")
    parser.add_argument("--processes", action="store_true",
                        help="run every step as a fresh 'medsam segment CASE.npz' process, as the "
                             "challenge runs a container (default: one process, the Python API)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="folder for steps.csv, objects.csv, summary.md and dsc_by_click.png")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_model_arguments(parser)


def _model_options(args: argparse.Namespace) -> list[str]:
    options = []
    for flag in ("checkpoint", "weights", "variant", "transform", "device", "precision"):
        value = getattr(args, flag)
        if value is not None:
            options += [f"--{flag}", str(value)]
    return options


def run(args: argparse.Namespace) -> int:
    from ..datasets.description import load_description
    from ..errors import InputError
    from ..evaluation import interactive
    from ..fileutil import check_output_folder, committed_together

    if args.clicks < 0:
        raise InputError(f"--clicks must be >= 0, got {args.clicks}")
    if args.max_cases is not None and args.max_cases < 1:
        raise InputError(f"--max-cases must be at least 1, got {args.max_cases}")
    out = check_output_folder(args.output, args.overwrite)
    description = load_description(args.description)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    interactive.choose_datasets(description, datasets)   # before the model loads
    with tempfile.TemporaryDirectory(prefix="medsam-bench-") as work:
        if args.processes:
            driver: interactive.Driver = interactive.ProcessDriver(Path(work), _model_options(args))
        else:
            from .segment import model_segmenter

            driver = interactive.SessionDriver(model_segmenter(args, args.device))
        rows = interactive.run_description(description, driver, datasets, args.max_cases, args.clicks,
                                           progress=True)
    with committed_together(args.overwrite):
        result = interactive.write_results(rows, out)
    print(interactive.summary_markdown(result["objects"]), end="")
    print(f"results in {out}/ (" + ", ".join(p.name for p in result["paths"].values()) + ")")
    return 0
