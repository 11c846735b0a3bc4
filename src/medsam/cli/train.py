"""``medsam train``: train or fine-tune a model on a prepared training set."""

from __future__ import annotations

import argparse

from . import finite_float

HELP = "train or fine-tune a model on data made by `medsam prepare` (torchrun for many GPUs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", help="YAML or JSON file holding the settings")
    parser.add_argument("--data", help="prepared data folder (setting 'data')")
    parser.add_argument("-o", "--out", help="run folder (setting 'out')")
    parser.add_argument("--variant", help="vit_b, vit_l, vit_h or lite")
    parser.add_argument("--init", help="checkpoint file, weights name, or 'scratch'")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="per process and micro-batch")
    parser.add_argument("--effective-batch", type=int,
                        help="gradient accumulation reaches this batch over all processes")
    parser.add_argument("--lr", type=finite_float)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: the config's, auto)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override any setting (repeatable), e.g. "
                        "--set weight_decay=0.01 --set datasets=kvasir,jsrt")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its resume.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config
    from ..training.trainer import train

    config = load_config(
        args.config, args.overrides, data=args.data, out=args.out, variant=args.variant,
        init=args.init, epochs=args.epochs, batch_size=args.batch_size,
        effective_batch=args.effective_batch, lr=args.lr, device=args.device,
        progress=False if args.no_progress else None)
    result = train(config, resume=args.resume, overwrite=args.overwrite)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        for row in result.history:
            dsc = "n/a" if row["tune_dsc"] is None else f"{row['tune_dsc']:.4f}"
            print(f"epoch {row['epoch'] + 1}: train loss {row['train_loss']:.4f}, tune DSC {dsc}, "
                  f"{row['images_per_s']:.2f} images/s")
        print(f"run folder: {result.run_dir}")
    return 0
