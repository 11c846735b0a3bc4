"""``medsam segment``: box-prompted segmentation of an image, a volume, or a folder of them.

Examples (the default model is LiteMedSAM, fetched once on first use)::

    medsam segment ct.nii.gz --box 120,80,15,260,210,40 --modality ct --window abdomen
    medsam segment dicom_folder/ --box 120,80,260,210 --slice 30 --weights medsam_vit_b
    medsam segment xray.png --prompts prompts.json --checkpoint my_finetuned.pth --overlay
    medsam segment cases/ -o segs/ --prompts boxes.csv      # a prompts file per case
    medsam segment cases/ -o segs/                         # npz files carry their boxes

All the work is done by the library (:mod:`medsam.segmentation.batch`: ``prepare_case``,
``segment_prepared``, ``segment_folder``); this module only reads options and reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import finite_float

if TYPE_CHECKING:
    import torch

    from ..segmentation import BoxPrompt, PromptsFile, Segmenter2D
    from ..segmentation.batch import CaseOptions, CaseResult, FolderResult

HELP = "segment objects from boxes in 2D images, volumes and DICOM series (or a folder of them)"

MODALITY_HELP = ("ct, mr, xray, us, mammo, oct, pet, endoscopy, dermoscopy, fundus, pathology, rgb "
                 "(default: from the DICOM tag; uint8 images are used as they are)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="image or volume file, DICOM series folder, challenge .npz, a folder "
                             "of cases (batch), or a DICOMweb server (dicomweb://HOST:PORT/PATH, "
                             "dicomwebs:// for TLS) with --study and --series")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="output label map (one case; default INPUT_seg.<ext> beside it) or output "
                             "folder (batch; default INPUT_seg/)")
    parser.add_argument("--box", action="append", metavar="X0,Y0,X1,Y1",
                        help="a box in pixels (x = column, y = row); 6 values x0,y0,z0,x1,y1,z1 for a "
                             "3D box (z inclusive slice numbers, from 0). Repeat for several objects "
                             "(labels 1, 2, ...)")
    parser.add_argument("--slice", type=int, metavar="K",
                        help="key slice (0-based) for 2D boxes on a volume")
    parser.add_argument("--slices", type=_slice_range, metavar="FIRST,LAST",
                        help="the object's first and last slice (inclusive) for a 2D box on its --slice: "
                             "the propagation stays within them")
    parser.add_argument("--prompts", metavar="FILE",
                        help="prompts file: JSON (boxes with labels, names, slices, refinement "
                             "points; the same for every case, or per case under \"cases\"; the web "
                             "app exports one) or CSV (one box per row: "
                             "case,x0,y0,x1,y1 and optional label,name,z0,z1,slice)")
    parser.add_argument("--world", nargs="?", const="LPS", type=str.upper, choices=("LPS", "RAS"),
                        help="--box values are world millimetres (LPS as ITK/DICOM, or RAS as 3D Slicer "
                             "displays them)")
    parser.add_argument("--box-from", metavar="REF",
                        help="--box values are pixel / voxel indices of REF, another file of the same scan "
                             "(a NIfTI of a DICOM series, a mask): they are placed on the input through world "
                             "coordinates, so a grid that runs the other way cannot misplace them")
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
                             "always on for the CVPR 2025 interactive challenge's npz cases, and for "
                             "every run when MEDSAM_EMBEDDING_CACHE names a folder (used instead)")
    parser.add_argument("--series", metavar="UID",
                        help="DICOM series to use when a folder holds several: its id, or #N for "
                             "the N-th one listed; on a DICOMweb server, the series instance UID")
    parser.add_argument("--study", metavar="UID", help="the study instance UID of the series on a DICOMweb server")
    parser.add_argument("--series-list", metavar="FILE",
                        help="DICOMweb input: a batch of series, as `medsam pacs find --json` prints them "
                             "(or a CSV with the columns study,series), into the folder -o; run it again "
                             "to finish a batch: the series done before are kept")
    parser.add_argument("--store", action="store_true",
                        help="DICOMweb input: store the DICOM SEG (-o SEG.dcm) back on the server (STOW-RS)")
    parser.add_argument("--pacs-config", metavar="FILE",
                        help="the DICOMweb server's settings and credentials (JSON; default "
                             "$MEDSAM_PACS_CONFIG or ~/.config/medsam/pacs.json; see docs/pacs.md)")
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


def _check_options(args: argparse.Namespace) -> None:
    from ..errors import InputError

    if args.box and args.prompts:
        raise InputError("give either --box or --prompts, not both")
    if args.slice is not None and not args.box:
        raise InputError("--slice applies to --box (a prompts file gives \"slice\" per entry)")
    if args.slices is not None and args.slice is None:
        raise InputError("--slices goes with a 2D --box on its key --slice (a prompts file gives \"z_range\")")
    if args.world and not args.box:
        raise InputError("--world applies to --box (a prompts file gives \"world\" per entry)")
    if args.box_from and not args.box:
        raise InputError("--box-from applies to --box")
    if args.box_from and (args.world or args.slice is not None):
        raise InputError("--box-from takes whole boxes in REF's indices (x0,y0,x1,y1 or x0,y0,z0,x1,y1,z1); "
                         "it does not combine with --world or --slice")


def _boxes(args: argparse.Namespace) -> list[BoxPrompt]:
    """The --box options as prompts (labels 1, 2, ... in order)."""
    from ..segmentation import BoxPrompt, parse_box_text

    if args.box_from:
        from ..io import read
        from ..segmentation import reference_box_to_world

        reference = read(args.box_from)[1]
        return [BoxPrompt(tuple(reference_box_to_world(parse_box_text(text), reference, f"--box {text}")),
                          label=i + 1, world=True, frame="LPS") for i, text in enumerate(args.box)]
    return [BoxPrompt(parse_box_text(text), label=i + 1, slice=args.slice, z_range=args.slices,
                      world=bool(args.world), frame=args.world or "LPS") for i, text in enumerate(args.box or ())]


def _slice_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the first and last slice as FIRST,LAST") from None
    return first, last


def _options(args: argparse.Namespace) -> CaseOptions:
    from ..segmentation.batch import CaseOptions

    return CaseOptions(modality=args.modality, window=args.window, level=args.level, width=args.width,
                       mode=args.mode, margin=args.margin, series=args.series, overlay=args.overlay,
                       overwrite=args.overwrite)


def _print_case(result: CaseResult, source: str | None = None) -> None:
    """One case's output and label volumes (a failed case is reported at the end);
    ``source``: how to name where the case came from (default: its path)."""
    if not result.ok:
        return
    if result.done_before:
        print(f"{source or result.path} -> {result.output} (done before, kept)")
        return
    print(f"{source or result.path} -> {result.output}" + (f" (overlay {result.overlay})" if result.overlay else ""))
    quality = {q.label: q for q in result.qualities}
    for m in result.volumes:
        q = quality.get(m.label)
        iou = f", predicted IoU {q.predicted_iou:.2f}" if q is not None and q.predicted_iou is not None else ""
        print("  " + m.describe(result.names.get(m.label, "")) + iou)
    for label in sorted(set(result.names) - {m.label for m in result.volumes}):
        print(f"  label {label}" + (f" ({result.names[label]})" if result.names[label] else "") + ": empty")
    for q in result.qualities:
        for text in q.warnings:
            print(f"medsam: warning: {result.case}: label {q.label}: probably wrong: {text}", file=sys.stderr)


def _print_failures(failed: Sequence[CaseResult]) -> None:
    from . import CLI_HINTS

    for result in failed:
        assert result.error is not None
        print(f"medsam: failed: {result.error.render(CLI_HINTS)}", file=sys.stderr)


def model_segmenter(args: argparse.Namespace, device: str | torch.device, report: bool = True,
                    disk_cache: bool = False, interactive: bool = False) -> Segmenter2D:
    """A segmenter for the model named by --checkpoint / --weights (default: LiteMedSAM; for
    ``interactive`` work, clicks and challenge steps, ``DEFAULT_INTERACTIVE_WEIGHTS``),
    fetched on first use, on ``device`` at --precision; ``report``: say on stderr which
    model, preprocessing and precision."""
    from .. import load_model
    from ..errors import WeightsDownloadError
    from ..segmentation.segmenters import make_segmenter
    from ..weights import DEFAULT_INTERACTIVE_WEIGHTS, DEFAULT_WEIGHTS

    source = args.checkpoint or args.weights or (DEFAULT_INTERACTIVE_WEIGHTS if interactive else DEFAULT_WEIGHTS)
    try:
        model = load_model(source, variant=args.variant, device=device, transform=args.transform,
                           progress=report)
    except WeightsDownloadError as exc:
        raise WeightsDownloadError(f"{exc} (--checkpoint PATH)") from None
    from ..segmentation.embedding_store import configured_store

    store = configured_store(disk_cache or getattr(args, "embedding_cache", False))
    segmenter = make_segmenter(model, precision=args.precision, store=store)
    default = "" if (args.checkpoint or args.weights) else \
        (", the default for clicks and challenge steps" if interactive else ", the default")
    if report:
        print(f"medsam: model {source} ({model.variant}{default}; {model.info.transform} preprocessing) on "
              f"{model.device}, {getattr(segmenter, 'precision', 'exact')} precision [preprocessing: "
              f"{model.info.transform_source}]", file=sys.stderr)
    return segmenter


def run(args: argparse.Namespace) -> int:
    from .. import distributed
    from ..errors import InputError
    from ..segmentation import load_prompts
    from ..segmentation.batch import prepare_case, segment_prepared
    from ..segmentation.cases import find_cases, output_path_for

    _check_options(args)
    prompts_file = load_prompts(args.prompts) if args.prompts else None
    from ..io.dicomweb import is_dicomweb_address

    if is_dicomweb_address(args.input):
        return _run_pacs(args, prompts_file)
    if args.study or args.store:
        raise InputError("--study and --store apply to a series on a DICOMweb server (dicomweb://HOST:PORT/PATH)")
    source = Path(args.input)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    options, boxes = _options(args), _boxes(args)
    if source.is_dir() and find_cases(source) != [source]:
        return _run_folder(args, source, options, prompts_file, boxes)
    if not distributed.read_env().is_main:
        return 0  # one case is one process's work: the others of a torchrun job stand by
    output = Path(args.output) if args.output else output_path_for(source)
    prepared = prepare_case(source, output, options, prompts_file, boxes)   # fail before loading
    interactive = prepared.case.interaction is not None or any(p.points for p in prepared.prompts)
    segmenter = model_segmenter(args, args.device, disk_cache=prepared.case.interaction is not None,
                                interactive=interactive)
    _print_case(segment_prepared(prepared, segmenter, options, progress=True))
    return 0


def _run_pacs(args: argparse.Namespace, prompts_file: PromptsFile | None) -> int:
    """One series on a DICOMweb server: retrieved, segmented, and with --store stored back."""
    from .. import distributed
    from ..errors import InputError
    from ..io.dicomweb import pacs_server
    from ..segmentation.batch import segment_prepared
    from ..segmentation.pacs import pacs_case, store_result

    if args.series_list:
        return _run_pacs_batch(args, prompts_file)
    if not (args.study and args.series):
        raise InputError("a series on a DICOMweb server is named by --study UID and --series UID "
                         "(or a batch by --series-list FILE)")
    if not args.output:
        raise InputError("give the output (-o SEG.dcm) for a series on a DICOMweb server")
    if not distributed.read_env().is_main:
        return 0
    server = pacs_server(args.input, args.pacs_config)
    options = dataclasses.replace(_options(args), series=None)   # the folder holds that series alone
    with pacs_case(server, args.study, args.series, args.output, options, prompts_file, _boxes(args),
                   store=args.store) as prepared:
        segmenter = model_segmenter(args, args.device, interactive=any(p.points for p in prepared.prompts))
        result = segment_prepared(prepared, segmenter, options, progress=True)
    _print_case(result, f"{server.describe()} study {args.study} series {args.series}")
    if args.store:
        stored = store_result(server, result)
        print(f"stored {result.output} on {server.describe()} ({len(stored)} instance"
              f"{'s' if len(stored) != 1 else ''})")
    return 0


def _run_pacs_batch(args: argparse.Namespace, prompts_file: PromptsFile | None) -> int:
    """A list of series on a DICOMweb server (each ``torchrun`` process takes its share)."""
    from .. import distributed
    from ..errors import InputError
    from ..io.dicomweb import pacs_server
    from ..segmentation.pacs import read_series_list, segment_pacs_series

    if args.study or args.series:
        raise InputError("--series-list names every series of a batch; give no --study or --series with it")
    if not args.output:
        raise InputError("give the output folder (-o FOLDER) of a batch of series")
    server = pacs_server(args.input, args.pacs_config)
    series = read_series_list(args.series_list)
    main = distributed.read_env().is_main
    options = dataclasses.replace(_options(args), series=None)
    interactive = _has_clicks(prompts_file, _boxes(args))
    done = segment_pacs_series(
        server, series, lambda device: model_segmenter(args, device, report=main, interactive=interactive),
        args.output, options, prompts_file, _boxes(args), store=args.store, device=args.device,
        on_case=_print_case, on_failures=_print_failures, progress=True)
    if main:
        before = sum(r.done_before for r in done.cases)
        kept = f", {before} kept from an earlier run" if before else ""
        _print_batch(done, "series", kept + (f", stored on {server.describe()}" if args.store else ""))
    return 1 if done.failed else 0


def _run_folder(args: argparse.Namespace, source: Path, options: CaseOptions, prompts_file: PromptsFile | None,
                boxes: list[BoxPrompt]) -> int:
    """Every case of a folder (each process of a ``torchrun`` job takes its share)."""
    from .. import distributed
    from ..segmentation.batch import segment_folder

    main = distributed.read_env().is_main
    npz = any(p.suffix.lower() == ".npz" for p in source.iterdir())   # challenge cases: embeddings on disk
    interactive = npz or _has_clicks(prompts_file, boxes)
    done: FolderResult = segment_folder(
        source, lambda device: model_segmenter(args, device, report=main, disk_cache=npz,
                                               interactive=interactive), args.output,
        options, prompts_file, boxes, device=args.device, on_case=_print_case, on_failures=_print_failures,
        progress=True)
    if main:
        _print_batch(done, "cases")
    return 1 if done.failed else 0


def _has_clicks(prompts_file: PromptsFile | None, boxes: Sequence[BoxPrompt]) -> bool:
    """Whether any prompt of a batch has clicks (they need the interaction default model)."""
    given = [*(prompts_file.shared or ()), *(p for v in prompts_file.by_case.values() for p in v)] \
        if prompts_file is not None else []
    return any(p.points for p in [*given, *boxes])


def _print_batch(done: FolderResult, what: str, extra: str = "") -> None:
    """Process 0's last line of a batch: how many of its cases were segmented, and where."""
    workers = f" by {done.processes} processes" if done.processes > 1 else ""
    print(f"segmented {len(done.cases) - len(done.failed)} of {len(done.cases)} {what} into "
          f"{done.output_dir}{workers}{extra} (times: {done.times})")
