"""``medsam benchmark interactive`` (the CVPR 2025 interactive 3D challenge's protocol) and
``medsam benchmark clicks2d`` (its 2D counterpart: a box, then clicks, on 2D images).

Examples (the objects of ``../shared/data`` the README's tables report)::

    medsam benchmark interactive --description examples/datasets/interactive_3d.json -o bench/
    medsam benchmark interactive --description examples/datasets/interactive_3d.json \
        --models lite_medsam,lite_interactive -o bench/
    medsam benchmark clicks2d --description examples/datasets/heldout_2d.json \
        --models lite_medsam,lite_interactive -o bench2d/

With several models each gets a subfolder of results, and ``comparison.md`` /
``clicks2d.md`` put them side by side. The protocols are
:mod:`medsam.evaluation.interactive` and :mod:`medsam.evaluation.clicks2d`; this module only
reads options, picks the drivers and prints the summaries.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HELP = ("benchmarks: 'interactive' runs the CVPR 2025 interactive 3D protocol (a box, then 5 clicks); "
        "'clicks2d' the same on 2D images")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .segment import add_model_arguments

    parser.add_argument("which", choices=("interactive", "clicks2d"), help="the benchmark to run")
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
    parser.add_argument("--models", metavar="A,B",
                        help="compare these models (weights names or checkpoint files), side by side "
                             "(default: the one model of --weights / --checkpoint, else lite_medsam)")
    add_model_arguments(parser)


def _model_options(args: argparse.Namespace, model: str) -> list[str]:
    from pathlib import Path

    options = ["--checkpoint" if Path(model).is_file() else "--weights", model]
    for flag in ("variant", "transform", "device", "precision"):
        value = getattr(args, flag)
        if value is not None:
            options += [f"--{flag}", str(value)]
    return options


def _models(args: argparse.Namespace) -> list[str]:
    from ..errors import InputError
    from ..weights import DEFAULT_INTERACTIVE_WEIGHTS

    if args.models:
        if args.checkpoint or args.weights:
            raise InputError("give the models to compare in one list, or one model, not both")
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if len(set(models)) != len(models):
            raise InputError(f"a model is named twice in {args.models!r}")
        return models
    return [args.checkpoint or args.weights or DEFAULT_INTERACTIVE_WEIGHTS]


def _label(model: str) -> str:
    from pathlib import Path

    return Path(model).stem if ("/" in model or model.endswith((".pth", ".pt"))) else model


def run(args: argparse.Namespace) -> int:
    from ..datasets.description import load_description
    from ..errors import InputError
    from ..evaluation import interactive, interactive_drivers, interactive_results
    from ..fileutil import check_output_folder, committed_together

    if args.clicks < 0:
        raise InputError(f"--clicks must be >= 0, got {args.clicks}")
    if args.max_cases is not None and args.max_cases < 1:
        raise InputError(f"--max-cases must be at least 1, got {args.max_cases}")
    models = _models(args)
    if args.which == "clicks2d" and args.processes:
        raise InputError("--processes applies to the 3D benchmark (challenge npz files)")
    out = check_output_folder(args.output, args.overwrite)
    description = load_description(args.description)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else None
    interactive.choose_datasets(description, datasets)   # before the models load
    if args.which == "clicks2d":
        return _clicks2d(args, models, description, datasets, out)
    results = {}
    for model in models:
        with tempfile.TemporaryDirectory(prefix="medsam-bench-") as work:
            if args.processes:
                driver: interactive.Driver = interactive_drivers.ProcessDriver(Path(work), _model_options(args, model))
            else:
                driver = interactive_drivers.SessionDriver(_segmenter(args, model))
            rows = interactive.run_description(description, driver, datasets, args.max_cases, args.clicks,
                                               progress=True)
        folder = out / _label(model) if len(models) > 1 else out
        with committed_together(args.overwrite):
            results[model] = interactive_results.write_results(rows, folder)
        print(f"{_label(model)}:")
        print(interactive_results.summary_markdown(results[model]["objects"]), end="")
    if len(models) > 1:
        with committed_together(args.overwrite):
            compared = interactive_results.compare_models({_label(m): results[m]["objects"] for m in models}, out)
        print(compared["paths"]["markdown"].read_text(encoding="utf-8"), end="")
    print(f"results in {out}/")
    return 0


def _segmenter(args: argparse.Namespace, model: str) -> object:
    from .segment import model_segmenter

    chosen = argparse.Namespace(**{**vars(args), "checkpoint": None, "weights": model})
    return model_segmenter(chosen, args.device)


def _clicks2d(args: argparse.Namespace, models: list[str], description: object, datasets: list[str] | None,
              out: Path) -> int:
    from ..evaluation import clicks2d
    from ..fileutil import committed_together

    results = {}
    for model in models:
        results[_label(model)] = clicks2d.run_description(description, _segmenter(args, model), datasets,
                                                          args.max_cases, args.clicks, progress=True)
    with committed_together(args.overwrite):
        written = clicks2d.write_results(results, out)
    print(written["paths"]["markdown"].read_text(encoding="utf-8"), end="")
    print(f"results in {out}/")
    return 0
