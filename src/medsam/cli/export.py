"""``medsam export``: a model's graphs for runtimes without PyTorch.

Examples::

    medsam export --format onnx -o lite_medsam_onnx/              # the default LiteMedSAM
    medsam export --format onnx -o medsam_onnx/ --weights medsam_vit_b

All the work is done by :mod:`medsam.export`; this module reads options, loads the
model and prints what was written.
"""

from __future__ import annotations

import argparse

HELP = "export a model as ONNX graphs (image encoder; prompt encoder + mask decoder) with its preprocessing"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="graph format (default onnx)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to create")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", metavar="PATH", help="model checkpoint file")
    weights.add_argument("--weights", metavar="NAME", help="named weights (default lite_medsam)")
    parser.add_argument("--variant", help="model variant (default: recorded in, or inferred from, the checkpoint)")
    parser.add_argument("--transform", help="preprocessing the weights need (default: what they record)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")


def run(args: argparse.Namespace) -> int:
    from .. import load_model
    from ..export import export_onnx
    from ..fileutil import check_output_folder

    check_output_folder(args.output, args.overwrite)     # before loading the model
    model = load_model(args.checkpoint or args.weights, variant=args.variant, device="cpu",
                       transform=args.transform)
    written = export_onnx(model, args.output, overwrite=args.overwrite)
    for path in written.values():
        print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
