"""``medsam reproduce``: the paper's evaluation protocol, from data to report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import finite_float

HELP = ("run the paper's evaluation protocol: prepare, fine-tune, train U-Nets, predict, "
        "evaluate, test, report")

DEFAULT_DESCRIPTION = "examples/datasets/shared_data.json"

EPILOG = ("Run time: mostly the training budgets, the fine-tune (--finetune-minutes) plus one U-Net "
          "per image category with training data (--unet-minutes each; 4 categories in the default "
          "description: 30 + 4 x 5 = 50 minutes with the defaults), then prediction and scoring (5.5 "
          "minutes for the default description). With the defaults the whole run took 56 minutes on "
          "a 2-core laptop CPU (docs/results.md). The run prints its own estimate when it starts; "
          "--max-cases N shortens prediction, not training.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..protocol.config import STEPS

    parser.add_argument("-o", "--output", required=True,
                        help="results folder (created; an existing one is resumed)")
    parser.add_argument("--description", default=DEFAULT_DESCRIPTION,
                        help=f"dataset description file (default {DEFAULT_DESCRIPTION}, the "
                             f"repository's description of ../shared/data)")
    parser.add_argument("--data", help="data folder the description's paths are relative to "
                                       "(replaces its 'root')")
    parser.add_argument("--finetune-minutes", type=finite_float, default=30.0,
                        help="time budget of the LiteMedSAM fine-tune (default 30)")
    parser.add_argument("--unet-minutes", type=finite_float, default=5.0,
                        help="time budget of each category's U-Net (default 5)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated steps to run (default all: {','.join(STEPS)})")
    parser.add_argument("--redo", action="store_true",
                        help="run the chosen steps again even when an earlier run finished them")
    parser.add_argument("--max-cases", type=int,
                        help="use the first N cases of each dataset only (a quick run)")
    parser.add_argument("--sam-weights", default="sam_vit_b",
                        help="registered weights of the SAM baseline, run when cached "
                             "(default sam_vit_b)")
    parser.add_argument("--nsd-diagonal", type=finite_float, metavar="PERCENT",
                        help="images without a pixel size: NSD tolerance of PERCENT %% of the image diagonal "
                             "(default: 2 px at the image's own resolution; 3D and images with a pixel size: 2 mm)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..protocol import ProtocolConfig, run_protocol

    description = Path(args.description)
    if not description.is_file():
        raise InputError(f"--description {description}: file not found"
                         + (" (run from the repository's folder, or give the description file)"
                            if args.description == DEFAULT_DESCRIPTION else ""))
    config = ProtocolConfig(
        description=description, out=Path(args.output),
        data_root=Path(args.data) if args.data else None, finetune_minutes=args.finetune_minutes,
        unet_minutes=args.unet_minutes,
        steps=tuple(s.strip() for s in args.steps.split(",") if s.strip()),
        max_cases=args.max_cases, sam_weights=args.sam_weights, device=args.device,
        nsd_diagonal=args.nsd_diagonal,
        progress=not args.no_progress)
    index = run_protocol(config, redo=args.redo,
                         log=lambda line: print(f"medsam reproduce: {line}", file=sys.stderr, flush=True))
    print(f"results: {index}")
    return 0
