"""Segmenting cases on disk: one file or DICOM folder (:func:`segment_file`), or every
case of a folder (:func:`segment_folder`), with their outputs written through
:mod:`medsam.fileutil` (label map and overlay committed together).

What ``medsam segment`` runs; usable from Python::

    from medsam import load_model
    from medsam.segmentation import BoxPrompt, make_segmenter
    from medsam.segmentation.batch import CaseOptions, segment_folder

    done = segment_folder("cases/", lambda device: make_segmenter(load_model(device=device)),
                          "segs/", boxes=[BoxPrompt((120, 80, 260, 210))],
                          options=CaseOptions(modality="ct", window="abdomen"))

A case's prompts come from a prompts file (its entry for the case), else the boxes
given, else the boxes and clicks the case's npz file carries (:func:`case_prompts`).
Under ``torchrun`` each process takes every WORLD_SIZE-th case of a folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar, cast

import numpy as np

from ..errors import InputError, MedSAMError, as_failure
from .cases import Case, case_name, check_output_clashes, find_cases, load_case, output_path_for
from .prompt_files import PromptsFile, prompts_from_interaction, prompts_from_npz_boxes
from .prompts import BoxPrompt
from .quality import ObjectQuality
from .segmenter import Segmenter2D

if TYPE_CHECKING:
    import torch

    from ..distributed import DistEnv
    from ..io.dicom_seg import Algorithm
    from ..metrics.volumes import LabelVolume

#: the table of a folder's cases written beside their label maps
TIMES_NAME = "segment_times.csv"
#: a folder run's table of every object: size, predicted IoU and warnings
#: one job of a batch (a case file and its output, a series on a PACS, ...)
Job = TypeVar("Job")
OBJECTS_NAME = "segment_objects.csv"


@dataclass(frozen=True)
class CaseOptions:
    """How each case is segmented and written.

    Attributes:
        modality, window, level, width: the intensity step
            (:func:`medsam.intensity.prepare_intensities`; modality None: from the DICOM
            tag, uint8 images as they are).
        mode, margin: the 3D mode and propagation margin (:func:`~.pipeline.segment`).
        series: the DICOM series of a folder holding several (its id, or ``#N``).
        overlay: also write a colour overlay PNG beside the label map (volumes: a
            montage of the slices holding the mask).
        overwrite: replace existing outputs.
    """

    modality: str | None = None
    window: str | None = None
    level: float | None = None
    width: float | None = None
    mode: str = "propagate"
    margin: float | None = None
    series: str | None = None
    overlay: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.margin is not None and not (np.isfinite(self.margin) and self.margin >= 0):
            raise InputError(f"margin must be a number >= 0, got {self.margin:g}", option="margin")


@dataclass(frozen=True)
class CaseResult:
    """One case: where it came from and went, its label volumes (``names``: label ->
    object name), each object's quality signal (:mod:`.quality`) and seconds; ``error``
    set (naming the case) when it failed."""

    case: str
    path: Path
    output: Path
    overlay: Path | None = None
    volumes: tuple[LabelVolume, ...] = ()
    names: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: MedSAMError | None = None
    qualities: tuple[ObjectQuality, ...] = ()
    #: the output was there from an earlier run of a resumable batch, and was kept
    done_before: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """``ok``, ``done before`` or ``failed``, as the times table says."""
        return "failed" if self.error is not None else "done before" if self.done_before else "ok"


@dataclass(frozen=True)
class FolderResult:
    """Every case of a folder, in case order (all processes' under ``torchrun``; only
    process 0 gets them, the others an empty ``cases``), and the times table."""

    cases: tuple[CaseResult, ...]
    output_dir: Path
    times: Path
    processes: int = 1

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.ok)


@dataclass(frozen=True)
class PreparedCase:
    """A case read and checked by :func:`prepare_case`: its prompts, its image after the
    intensity step, and where its label map goes."""

    case: Case
    prompts: list[BoxPrompt]
    image: np.ndarray
    output: Path
    #: the source instances a DICOM SEG output references (pydicom datasets); () otherwise
    seg_sources: tuple = ()


def case_prompts(case: Case, prompts_file: PromptsFile | None = None,
                 boxes: Sequence[BoxPrompt] = ()) -> list[BoxPrompt]:
    """A case's prompts: its entry of ``prompts_file``, else ``boxes``, else the boxes
    and clicks its npz file carries.

    Raises:
        InputError: both a prompts file and boxes, or no prompts for this case.
    """
    if prompts_file is not None and boxes:
        raise InputError("give either boxes or a prompts file, not both")
    if prompts_file is not None:
        return prompts_file.for_case(case.name)
    if boxes:
        return list(boxes)
    if case.interaction is not None:
        return prompts_from_interaction(case.interaction)
    if case.boxes is not None:
        return prompts_from_npz_boxes(case.boxes)
    raise InputError(f"{case.path}: no prompts: give boxes or a prompts file (npz files may carry 'boxes')")


def overlay_path(output: str | os.PathLike) -> Path:
    """The overlay PNG written beside a label map: ``<name>_overlay.png``."""
    output = Path(output)
    return output.with_name(case_name(output) + "_overlay.png")


def prepare_case(path: str | os.PathLike, output: str | os.PathLike, options: CaseOptions = CaseOptions(),
                 prompts_file: PromptsFile | None = None, boxes: Sequence[BoxPrompt] = ()) -> PreparedCase:
    """Read one case and check everything about it before any model work: outputs free,
    prompts valid for this image, intensities normalisable.

    Raises:
        InputError: naming the file and the problem.
    """
    from ..fileutil import check_writable_output
    from ..intensity import prepare_intensities
    from .prompts import resolve_prompts

    output = Path(output)
    check_writable_output(output, options.overwrite)
    if options.overlay:
        check_writable_output(overlay_path(output), options.overwrite)
    case = load_case(path, series_id=options.series)
    prompts = case_prompts(case, prompts_file, boxes)
    resolve_prompts(prompts, case.image.shape[:case.geometry.ndim], case.geometry, options.mode)
    try:
        image = prepare_intensities(case.image, case.geometry, options.modality or case.modality,
                                    options.window, options.level, options.width)
    except InputError as exc:   # the values' problem, named with their file
        raise InputError(f"{path}: {exc.message}", exc.option) from None
    return PreparedCase(case, prompts, image, output, case_seg_sources(case, output, options.series))


def case_seg_sources(case: Case, output: Path, series: str | None = None) -> tuple:
    """The source instances of a DICOM SEG ``output`` of ``case`` (checked before any model
    work; () when ``output`` is not ``.dcm``).

    Raises:
        InputError: the case is not DICOM, its instances do not match its slices, or they
            lack the identifiers a SEG references.
    """
    from ..io.dicom_seg import seg_sources
    from ..io.dispatch import extension
    from ..io.volume import DICOM_EXTENSIONS, select_series

    if extension(output) not in DICOM_EXTENSIONS:
        return ()
    source = Path(case.path)
    if source.is_dir():
        files: Sequence[str] = select_series(source, series).files
    elif extension(source) in DICOM_EXTENSIONS:
        files = [str(source)]
    else:
        raise InputError(f"{output}: a DICOM SEG references its DICOM source, and {source} is not DICOM; "
                         f"write this case's labels as .nii.gz, .nrrd or .seg.nrrd")
    depth = case.image.shape[0] if case.geometry.ndim == 3 else 1
    if len(files) != depth:
        raise InputError(f"{output}: {source} holds {len(files)} DICOM instances for {depth} slices; "
                         f"a DICOM SEG needs one instance per slice")
    return tuple(seg_sources(files))


def algorithm_of(segmenter: Segmenter2D) -> Algorithm:
    """What made a segmentation, for a DICOM SEG: the model's weights by name and sha256."""
    from .. import __version__
    from ..io.dicom_seg import Algorithm
    from ..weights import file_digest

    model = getattr(segmenter, "model", None)
    info = getattr(model, "info", None)
    name = (info.weights if info is not None else "") or type(model if model is not None else segmenter).__name__
    weights = info.weights_file if info is not None else None
    digest = file_digest(weights) if weights and Path(weights).is_file() else ""
    return Algorithm(Path(name).name if os.sep in name else name, __version__, digest)


def segment_prepared(prepared: PreparedCase, segmenter: Segmenter2D, options: CaseOptions = CaseOptions(),
                     progress: bool = False) -> CaseResult:
    """Segment a case from :func:`prepare_case` and write its label map (and overlay)."""
    from ..fileutil import committed_together
    from ..io import write_labels, write_overlay_montage, write_overlay_png
    from ..io.dicom_seg import SegSource
    from ..metrics import label_volumes
    from .pipeline import segment

    start = time.perf_counter()
    case, output = prepared.case, prepared.output
    qualities: list[ObjectQuality] = []
    labels = segment(prepared.image, case.geometry, prepared.prompts, segmenter, mode=options.mode,
                     margin=options.margin, progress=progress, qualities=qualities)
    overlay = overlay_path(output) if options.overlay else None
    with committed_together(options.overwrite):   # the label map and its overlay, or neither
        write_labels(labels, output, case.geometry, overwrite=options.overwrite,
                     names={p.label: p.name for p in prepared.prompts},
                     codes={p.label: p.codes for p in prepared.prompts if p.codes is not None},
                     dicom=SegSource(prepared.seg_sources, algorithm_of(segmenter)) if prepared.seg_sources else None)
        if overlay is not None and case.geometry.ndim == 2:
            write_overlay_png(case.image, labels, overlay, overwrite=options.overwrite)
        elif overlay is not None:
            write_overlay_montage(prepared.image, labels, overlay, direction=case.geometry.direction,
                                  overwrite=options.overwrite)
    volumes = label_volumes(labels, case.geometry.spacing, case.geometry.spacing_known)
    return CaseResult(case.name, case.path, output, overlay, tuple(volumes),
                      {p.label: p.name for p in prepared.prompts}, time.perf_counter() - start,
                      qualities=tuple(qualities))


def segment_file(path: str | os.PathLike, segmenter: Segmenter2D, output: str | os.PathLike | None = None,
                 options: CaseOptions = CaseOptions(), prompts_file: PromptsFile | None = None,
                 boxes: Sequence[BoxPrompt] = (), progress: bool = False) -> CaseResult:
    """Segment one file or DICOM folder; ``output`` defaults to ``<name>_seg<ext>``
    beside it (:func:`~.cases.output_path_for`).

    Raises:
        InputError: a bad file, prompt or option (before any model work);
        OutputError: the output could not be written (nothing is left of it).
    """
    output = Path(output) if output is not None else output_path_for(path)
    return segment_prepared(prepare_case(path, output, options, prompts_file, boxes), segmenter,
                            options, progress)


def plan_folder(folder: str | os.PathLike, output_dir: str | os.PathLike | None = None,
                prompts_file: PromptsFile | None = None, overwrite: bool = False
                ) -> tuple[Path, list[tuple[Path, Path]]]:
    """The output folder (default ``<folder>_seg``) and the ``(case, output)`` pairs of a
    folder's cases, checked before any work: no two cases write one output, the times
    table is free, every case of the prompts file is in the folder.

    Raises:
        InputError: naming the clash, the folder or the unknown cases.
    """
    from ..fileutil import check_writable_output

    folder = Path(folder)
    cases = find_cases(folder)
    out_dir = Path(output_dir) if output_dir is not None else folder.with_name(folder.name + "_seg")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: the output of a folder of cases must be a folder")
    outputs = [output_path_for(c, out_dir) for c in cases]
    check_output_clashes(cases, outputs)
    check_writable_output(out_dir / TIMES_NAME, overwrite)
    check_writable_output(out_dir / OBJECTS_NAME, overwrite)
    unknown = prompts_file.unknown_cases([case_name(c) for c in cases]) if prompts_file else []
    if unknown:
        raise InputError(f"{prompts_file.path if prompts_file else ''}: case(s) not in {folder}: "
                         f"{', '.join(unknown[:5])}" + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
    return out_dir, list(zip(cases, outputs))


def _segment_one(case: Path, output: Path, segmenter: Segmenter2D, options: CaseOptions,
                 prompts_file: PromptsFile | None, boxes: Sequence[BoxPrompt]) -> CaseResult:
    start = time.perf_counter()
    try:
        done = segment_prepared(prepare_case(case, output, options, prompts_file, boxes), segmenter, options)
        return replace(done, seconds=time.perf_counter() - start)   # reading included
    except Exception as exc:  # no failure of one case may stop the others
        # our errors name their file (the input, or the output that could not be written)
        error = exc if isinstance(exc, MedSAMError) else as_failure(exc, str(case))
        return CaseResult(case_name(case), case, output, seconds=time.perf_counter() - start, error=error)


def segment_folder(folder: str | os.PathLike, segmenter_for: Callable[[str | torch.device], Segmenter2D],
                   output_dir: str | os.PathLike | None = None, options: CaseOptions = CaseOptions(),
                   prompts_file: PromptsFile | None = None, boxes: Sequence[BoxPrompt] = (),
                   device: str = "auto", on_case: Callable[[CaseResult], None] | None = None,
                   on_failures: Callable[[Sequence[CaseResult]], None] | None = None,
                   progress: bool = False) -> FolderResult:
    """Segment every case of a folder (:func:`~.cases.find_cases`) into ``output_dir``.

    A case that fails is reported and skipped, never the end of the run. The times table
    (``segment_times.csv``: case, status, seconds, error) is written last, by process 0,
    which holds the output folder (a lock file) for the run.

    Args:
        segmenter_for: makes the segmenter on a device (each ``torchrun`` process its own,
            on ``cuda:LOCAL_RANK`` where there are GPUs).
        device: as :func:`medsam.devices.resolve_device`.
        on_case: called with each case's result as it is done (in the process that did it).
        on_failures: called by process 0 with the failed cases before the times table is
            written (which may itself fail).
    Raises:
        InputError: as :func:`plan_folder`, before any work.
    """
    from .. import distributed
    from ..fileutil import output_lock

    out_dir, jobs = plan_folder(folder, output_dir, prompts_file, options.overwrite)
    env = distributed.read_env()
    with output_lock(out_dir) if env.is_main else contextlib.nullcontext():
        results = run_jobs(jobs, segmenter_for, lambda job, segmenter: _segment_one(
            job[0], job[1], segmenter, options, prompts_file, boxes), device, on_case, progress, env)
        if env.is_main:
            write_times(results, out_dir, options, on_failures)
    return FolderResult(tuple(results), out_dir, out_dir / TIMES_NAME, env.world_size)


def run_jobs(jobs: Sequence[Job], segmenter_for: Callable[[str | torch.device], Segmenter2D],
             run_one: Callable[[Job, Segmenter2D], CaseResult], device: str = "auto",
             on_case: Callable[[CaseResult], None] | None = None, progress: bool = False,
             env: DistEnv | None = None) -> list[CaseResult]:
    """Each process of a ``torchrun`` job (or the one process) takes every ``world_size``-th
    job, makes its segmenter on its device and runs ``run_one(job, segmenter)`` on each
    (which reports a failed case in its result, never raises); returns every process's
    results in job order (all of them in process 0)."""
    from .. import distributed
    from ..progress import progress_bar

    env = env if env is not None else distributed.read_env()
    run_on = distributed.device_for(env, device)
    distributed.init(env, run_on)
    try:
        segmenter = segmenter_for(run_on)
        mine = list(enumerate(jobs))[env.rank::env.world_size]
        done = []
        for index, job in progress_bar(mine, desc="cases", unit="case", enabled=progress and env.is_main):
            result = run_one(job, segmenter)
            if on_case is not None:
                on_case(result)
            done.append((index, result))
        everyone = cast("list[list[tuple[int, CaseResult]]]", distributed.gather(done))
    finally:
        distributed.shutdown()
    return [result for _, result in sorted((item for part in everyone for item in part), key=lambda i: i[0])]


def _object_rows(results: Sequence[CaseResult]) -> list[tuple]:
    rows = []
    for r in results:
        sizes = {v.label: v for v in r.volumes}
        for q in r.qualities:
            size = sizes.get(q.label)
            rows.append((r.case, q.label, r.names.get(q.label, ""), size.voxels if size else 0,
                         round(size.volume, 4) if size else 0.0, size.unit if size else "", q.slices,
                         "" if q.predicted_iou is None else round(q.predicted_iou, 4),
                         "" if q.key_iou is None else round(q.key_iou, 4), " | ".join(q.warnings)))
    return rows


def write_times(results: Sequence[CaseResult], out_dir: Path, options: CaseOptions,
                on_failures: Callable[[Sequence[CaseResult]], None] | None) -> None:
    """Process 0's last step of a batch: report the failed cases, then write the times
    table and the objects table, together."""
    from ..fileutil import committed_together, write_csv

    failed = [r for r in results if not r.ok]
    if failed and on_failures is not None:
        on_failures(failed)
    with committed_together(options.overwrite):
        write_csv(out_dir / TIMES_NAME, ["case", "status", "seconds", "error"],
                  [(r.case, r.status, round(r.seconds, 3), r.error.render() if r.error else "")
                   for r in results])
        write_csv(out_dir / OBJECTS_NAME, ["case", "label", "name", "voxels", "volume", "unit", "slices",
                                           "predicted_iou", "key_iou", "warnings"], _object_rows(results))
