"""``medsam segment``: box-prompted segmentation of an image, a volume, or a folder of them.

Examples (the default model is LiteMedSAM, fetched once on first use)::

    medsam segment ct.nii.gz --box 120,80,15,260,210,40 --modality ct --window abdomen
    medsam segment dicom_folder/ --box 120,80,260,210 --slice 30 --weights medsam_vit_b
    medsam segment xray.png --prompts prompts.json --checkpoint my_finetuned.pth --overlay
    medsam segment cases/ -o segs/ --prompts boxes.csv      # a prompts file per case
    medsam segment cases/ -o segs/                         # npz files carry their boxes

All the work is done by the library (``load_case``, ``prepare_intensities``, ``segment``,
``label_volumes``); this module only reads options, names outputs and reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from . import finite_float

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..distributed import DistEnv
    from ..metrics.volumes import LabelVolume
    from ..segmentation import BoxPrompt, Case, PromptsFile, Segmenter2D

HELP = "segment objects from boxes in 2D images, volumes and DICOM series (or a folder of them)"

MODALITY_HELP = ("ct, mr, xray, us, mammo, oct, pet, endoscopy, dermoscopy, fundus, pathology, rgb "
                 "(default: from the DICOM tag; uint8 images are used as they are)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="image or volume file, DICOM series folder, challenge .npz, or a folder "
                             "of cases (batch)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="output label map (one case; default INPUT_seg.<ext> beside it) or output "
                             "folder (batch; default INPUT_seg/)")
    parser.add_argument("--box", action="append", metavar="X0,Y0,X1,Y1",
                        help="a box in pixels (x = column, y = row); 6 values x0,y0,z0,x1,y1,z1 for a "
                             "3D box (z inclusive slice numbers, from 0). Repeat for several objects "
                             "(labels 1, 2, ...)")
    parser.add_argument("--slice", type=int, metavar="K",
                        help="key slice (0-based) for 2D boxes on a volume")
    parser.add_argument("--prompts", metavar="FILE",
                        help="prompts file: JSON (boxes with labels, names, slices, refinement "
                             "points; the same for every case, or per case under \"cases\"; the web "
                             "app exports one) or CSV (one box per row: "
                             "case,x0,y0,x1,y1 and optional label,name,z0,z1,slice)")
    parser.add_argument("--world", nargs="?", const="LPS", type=str.upper, choices=("LPS", "RAS"),
                        help="--box values are world millimetres (LPS as ITK/DICOM, or RAS as 3D Slicer "
                             "displays them)")
    add_model_arguments(parser)
    parser.add_argument("--modality", help=MODALITY_HELP)
    parser.add_argument("--window", help="CT window preset (abdomen, soft_tissue, lung, brain, bone, "
                                         "mediastinum, liver)")
    parser.add_argument("--level", type=finite_float, help="CT window level (HU)")
    parser.add_argument("--width", type=finite_float, help="CT window width (HU)")
    parser.add_argument("--mode", choices=("propagate", "plain"), default="propagate",
                        help="3D: propagate from the key slice (default) or the same box on every slice")
    parser.add_argument("--margin", type=finite_float,
                        help="pixels added around the previous slice's mask when propagating (default 3)")
    parser.add_argument("--embedding-cache", action="store_true",
                        help="keep slice embeddings on disk ($MEDSAM_HOME/embeddings, 2 GiB at most, safe "
                             "to delete) so a later run on the same slices skips the image encoder; "
                             "always on for the CVPR 2025 interactive challenge's npz cases")
    parser.add_argument("--series", metavar="UID",
                        help="DICOM series to use when a folder holds several: its id, or #N for "
                             "the N-th one listed")
    parser.add_argument("--overlay", action="store_true",
                        help="also write a colour overlay PNG beside the output (volumes: a "
                             "montage of the slices holding the mask)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming the model and where and how it runs (shared with ``medsam serve``)."""
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", metavar="PATH", help="model checkpoint file")
    weights.add_argument("--weights", metavar="NAME",
                         help="named weights, fetched on first use (default: lite_medsam, the "
                              "official LiteMedSAM; medsam_vit_b is the paper's full model; see "
                              "`medsam weights list`)")
    parser.add_argument("--variant",
                        help="model variant (default: recorded in, or inferred from, the checkpoint)")
    parser.add_argument("--transform",
                        help="model-input preprocessing: litemedsam, medsam or sam (default: what "
                             "the weights record or are registered with, else the variant's)")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda, cuda:N or mps (default auto: CUDA, then MPS, else CPU)")
    parser.add_argument("--precision", choices=("auto", "exact", "bf16"), default="auto",
                        help="exact: float32 throughout; bf16: bf16 autocast (faster where the "
                             "hardware has native bf16, masks agree with exact to about 99%%); "
                             "auto (default): the fastest mode that meets the accuracy guard "
                             "on this hardware (see docs/performance.md)")


def _prompts(args: argparse.Namespace, case: Case, prompts_file: PromptsFile | None) -> list[BoxPrompt]:
    """Prompts for one case: --prompts file, else --box options, else the npz's own boxes."""
    from ..errors import InputError
    from ..segmentation import BoxPrompt, parse_box_text, prompts_from_npz_boxes
    from ..segmentation.prompts import prompts_from_interaction

    if prompts_file is not None:
        return prompts_file.for_case(case.name)
    if args.box:
        return [BoxPrompt(parse_box_text(text), label=i + 1, slice=args.slice,
                          world=bool(args.world), frame=args.world or "LPS")
                for i, text in enumerate(args.box)]
    if case.interaction is not None:
        return prompts_from_interaction(case.interaction)
    if case.boxes is not None:
        return prompts_from_npz_boxes(case.boxes)
    raise InputError(f"{case.path}: no prompts: give --box or --prompts (npz files may carry 'boxes')")


def _check_options(args: argparse.Namespace) -> None:
    from ..errors import InputError

    if args.box and args.prompts:
        raise InputError("give either --box or --prompts, not both")
    if args.slice is not None and not args.box:
        raise InputError("--slice applies to --box (a prompts file gives \"slice\" per entry)")
    if args.world and not args.box:
        raise InputError("--world applies to --box (a prompts file gives \"world\" per entry)")
    if args.margin is not None and args.margin < 0:
        raise InputError(f"--margin must be >= 0, got {args.margin:g}")


def _prepare_case(args: argparse.Namespace, path: Path, output: Path, prompts_file: PromptsFile | None
                  ) -> tuple[Case, list[BoxPrompt], np.ndarray]:
    """Read one case and check everything about it before any model work: output free,
    prompts valid for this image, intensities normalisable. Returns (case, prompts, image)."""
    from ..fileutil import check_writable_output
    from ..intensity import prepare_intensities
    from ..segmentation import load_case, resolve_prompts

    check_writable_output(output, args.overwrite)
    if args.overlay:
        check_writable_output(_overlay_path(output), args.overwrite)
    case = load_case(path, series_id=args.series)
    prompts = _prompts(args, case, prompts_file)
    resolve_prompts(prompts, case.image.shape[:case.geometry.ndim], case.geometry, args.mode)
    image = prepare_intensities(case.image, case.geometry, args.modality or case.modality,
                                args.window, args.level, args.width)
    return case, prompts, image


def _overlay_path(output: Path) -> Path:
    from ..segmentation.cases import case_name

    return output.with_name(case_name(output) + "_overlay.png")


def _segment_case(args: argparse.Namespace, prepared: tuple[Case, list[BoxPrompt], np.ndarray], output: Path,
                  segmenter: Segmenter2D) -> list[LabelVolume]:
    """Segment a prepared case, write its label map (and overlay), print label volumes."""
    from ..fileutil import committed_together
    from ..io import write_labels, write_overlay_montage, write_overlay_png
    from ..metrics import label_volumes
    from ..segmentation import segment

    case, prompts, image = prepared
    labels = segment(image, case.geometry, prompts, segmenter, mode=args.mode, margin=args.margin,
                     progress=sys.stderr.isatty())
    with committed_together(args.overwrite):   # the label map and its overlay, or neither
        write_labels(labels, output, case.geometry, overwrite=args.overwrite)
        if args.overlay and case.geometry.ndim == 2:
            write_overlay_png(case.image, labels, _overlay_path(output), overwrite=args.overwrite)
        elif args.overlay:
            write_overlay_montage(image, labels, _overlay_path(output), direction=case.geometry.direction,
                                  overwrite=args.overwrite)
    names = {p.label: p.name for p in prompts}
    measures = label_volumes(labels, case.geometry.spacing, case.geometry.spacing_known)
    print(f"{case.path} -> {output}" + (f" (overlay {_overlay_path(output)})" if args.overlay
                                         else ""))
    found = {m.label for m in measures}
    for m in measures:
        print("  " + m.describe(names.get(m.label, "")))
    for label in sorted(set(names) - found):
        print(f"  label {label}" + (f" ({names[label]})" if names[label] else "") + ": empty")
    return measures


def _segmenter(args: argparse.Namespace, device: str | torch.device, report: bool = True,
               disk_cache: bool = False) -> Segmenter2D:
    """A segmenter for the model named by --checkpoint / --weights (default: LiteMedSAM),
    fetched on first use, on ``device`` at --precision; ``report``: say on stderr which
    model, preprocessing and precision."""
    from .. import load_model
    from ..errors import WeightsDownloadError
    from ..segmentation.unet_segmenter import make_segmenter
    from ..transforms import transform_for_variant
    from ..weights import DEFAULT_WEIGHTS

    source = args.checkpoint or args.weights or DEFAULT_WEIGHTS
    try:
        model = load_model(source, variant=args.variant, device=device, transform=args.transform,
                           progress=report)
    except WeightsDownloadError as exc:
        raise WeightsDownloadError(f"{exc} (--checkpoint PATH)") from None
    store = None
    if disk_cache or getattr(args, "embedding_cache", False):
        from ..segmentation.embedding_store import EmbeddingStore

        store = EmbeddingStore()
    segmenter = make_segmenter(model, precision=args.precision, store=store)
    default = "" if (args.checkpoint or args.weights) else ", the default"
    transform = model.preprocessing or transform_for_variant(model.variant)
    if report:
        print(f"medsam: model {source} ({model.variant}{default}; {transform} preprocessing) on "
              f"{model.device}, {getattr(segmenter, 'precision', 'exact')} precision [preprocessing: "
              f"{model.preprocessing_source}]", file=sys.stderr)
    return segmenter


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..errors import InputError
    from ..fileutil import check_writable_output
    from ..segmentation import load_prompts
    from ..segmentation.cases import case_name, check_output_clashes, find_cases, output_path_for

    _check_options(args)
    prompts_file = load_prompts(args.prompts) if args.prompts else None
    source = Path(args.input)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    cases = find_cases(source) if source.is_dir() else [source]
    batch = source.is_dir() and cases != [source]
    if batch:
        out_dir = Path(args.output) if args.output else source.with_name(source.name + "_seg")
        if out_dir.exists() and not out_dir.is_dir():
            raise InputError(f"{out_dir}: batch output must be a folder")
        outputs = [output_path_for(c, out_dir) for c in cases]
        check_output_clashes(cases, outputs)
        check_writable_output(out_dir / "segment_times.csv", args.overwrite)
        unknown = prompts_file.unknown_cases([case_name(c) for c in cases]) if prompts_file else []
        if unknown:
            raise InputError(f"{args.prompts}: case(s) not in {source}: {', '.join(unknown[:5])}"
                             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    else:
        outputs = [Path(args.output) if args.output else output_path_for(source)]

    if not batch:
        if not distributed.read_env().is_main:
            return 0  # one case is one process's work: the others of a torchrun job stand by
        prepared = _prepare_case(args, cases[0], outputs[0], prompts_file)  # fail before loading
        _segment_case(args, prepared, outputs[0],
                      _segmenter(args, args.device, disk_cache=prepared[0].interaction is not None))
        return 0
    return _segment_folder(args, list(zip(cases, outputs)), out_dir, prompts_file)


def _segment_one(args: argparse.Namespace, case: Path, output: Path, prompts_file: PromptsFile | None,
                 segmenter: Segmenter2D) -> tuple[str, str, float, str]:
    """(case name, "ok" or "failed", seconds, error message) of one case of a folder."""
    from ..errors import MedSAMError
    from ..segmentation.cases import case_name

    name, start = case_name(case), time.perf_counter()
    try:
        _segment_case(args, _prepare_case(args, case, output, prompts_file), output, segmenter)
        return name, "ok", time.perf_counter() - start, ""
    except MedSAMError as exc:
        return name, "failed", time.perf_counter() - start, str(exc)
    except Exception as exc:  # no failure of one case may stop the others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return name, "failed", time.perf_counter() - start, f"{case}: {type(exc).__name__}: {first}"


def _segment_folder(args: argparse.Namespace, jobs: list[tuple[Path, Path]], out_dir: Path,
                    prompts_file: PromptsFile | None) -> int:
    """Segment a folder's cases; under ``torchrun`` each process takes every WORLD_SIZE-th
    case (on ``cuda:LOCAL_RANK`` where there are GPUs) and process 0 writes the times CSV.
    Process 0 holds the output folder (a lock file) for the run."""
    import contextlib

    from .. import distributed
    from ..fileutil import output_lock

    env = distributed.read_env()
    with output_lock(out_dir) if env.is_main else contextlib.nullcontext():
        return _segment_jobs(args, jobs, out_dir, prompts_file, env)


def _segment_jobs(args: argparse.Namespace, jobs: list[tuple[Path, Path]], out_dir: Path,
                  prompts_file: PromptsFile | None, env: DistEnv) -> int:
    from tqdm.auto import tqdm

    from .. import distributed
    from ..evaluation.results import write_csv
    from ..fileutil import committed_together
    from . import cli_text

    device = distributed.device_for(env, args.device)
    distributed.init(env, device)
    try:
        npz = any(case.suffix.lower() == ".npz" for case, _ in jobs)
        segmenter = _segmenter(args, device, report=env.is_main, disk_cache=npz)
        mine = list(enumerate(jobs))[env.rank::env.world_size]
        bar = tqdm(mine, desc="cases", unit="case", disable=not (sys.stderr.isatty() and env.is_main))
        done = [(index, _segment_one(args, case, output, prompts_file, segmenter))
                for index, (case, output) in bar]
        everyone = cast("list[list[tuple[int, tuple[str, str, float, str]]]]", distributed.gather(done))
    finally:
        distributed.shutdown()
    rows = [row for _, row in sorted(item for part in everyone for item in part)]
    failed = [error for _, status, _, error in rows if status == "failed"]
    if env.is_main:
        for line in failed:   # before the times table, which may fail to be written
            print(f"medsam: failed: {cli_text(line)}", file=sys.stderr)
        with committed_together(args.overwrite):
            write_csv(out_dir / "segment_times.csv", ["case", "status", "seconds", "error"],
                      [(name, status, round(seconds, 3), error) for name, status, seconds, error in rows])
        workers = f" by {env.world_size} processes" if env.distributed else ""
        print(f"segmented {len(rows) - len(failed)} of {len(rows)} cases into {out_dir}{workers} "
              f"(times: {out_dir / 'segment_times.csv'})")
    return 1 if failed else 0
