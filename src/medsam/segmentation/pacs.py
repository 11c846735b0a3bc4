"""Segmenting a series that lives on a PACS (DICOMweb, :mod:`medsam.io.dicomweb`).

The series is retrieved (WADO-RS) into a temporary folder and segmented as a local DICOM
series would be, with the same geometry, checks and outputs (:func:`~.batch.prepare_case`,
:func:`~.batch.segment_prepared`); a DICOM SEG written from it references the retrieved
instances by their UIDs, which are the PACS's own. :func:`store_result` sends that SEG back
(STOW-RS). The local output is always complete or absent: it is written (atomically) before
anything is stored, and a store that fails says so and names it.

:func:`segment_pacs_series` does the same for a list of series (a batch): each series is
one case, a failed one is reported and skipped, a series whose output an earlier run left is
kept (and stored again with ``store``: storing is idempotent), so running the same batch again
finishes it; each ``torchrun`` process takes its share, as for a folder of files.

    server = pacs_server("dicomweb://127.0.0.1:8042/dicom-web")
    with pacs_case(server, study, series, "seg.dcm", boxes=[BoxPrompt(...)]) as prepared:
        result = segment_prepared(prepared, make_segmenter(load_model()))
    store_result(server, result)
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from ..errors import InputError, MedSAMError, as_failure
from ..io.dicomweb import PacsError, PacsServer, retrieve_series, store_files, uid_name
from .batch import (
    TIMES_NAME,
    CaseOptions,
    CaseResult,
    FolderResult,
    PreparedCase,
    prepare_case,
    run_jobs,
    segment_prepared,
    write_times,
)
from .prompt_files import PromptsFile
from .prompts import BoxPrompt
from .segmenter import Segmenter2D

if TYPE_CHECKING:
    import torch


@contextmanager
def pacs_case(server: PacsServer, study: str, series: str, output: str | os.PathLike,
              options: CaseOptions = CaseOptions(), prompts_file: PromptsFile | None = None,
              boxes: Sequence[BoxPrompt] = (), store: bool = False) -> Iterator[PreparedCase]:
    """Retrieve a series from ``server`` and prepare it as a case (see
    :func:`~.batch.prepare_case`); the retrieved files live until the block ends.
    ``store``: the result will be stored back, so ``output`` must be a DICOM SEG (``.dcm``).

    Raises:
        InputError: a bad output, prompt or option (checked before anything is retrieved
            where it can be);
        PacsError: the server, the study or the series (one line naming them).
    """
    from ..fileutil import check_writable_output

    output = Path(output)
    if store and output.suffix.lower() != ".dcm":
        raise InputError(f"{output}: only a DICOM SEG (.dcm) can be stored on a PACS")
    check_writable_output(output, options.overwrite)
    with tempfile.TemporaryDirectory(prefix="medsam-pacs-") as tmp:
        folder = retrieve_series(server, study, series, Path(tmp) / uid_name(series))
        yield prepare_case(folder, output, options, prompts_file, boxes)


def store_result(server: PacsServer, result: CaseResult) -> list[str]:
    """Store a case's DICOM SEG on ``server`` (STOW-RS); returns the stored SOP instance
    UIDs.

    Raises:
        PacsError: the server refused it; the message says that the local SEG stays
            where it was written.
    """
    try:
        return store_files(server, [result.output])
    except PacsError as exc:
        raise PacsError(f"{exc.message}; nothing was stored, the DICOM SEG is at {result.output}") from None


def read_series_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(study, series)`` UIDs of a batch: JSON, a list of objects with ``study`` and
    ``series`` (what ``medsam pacs find --json`` prints), or CSV with the columns ``study``
    and ``series``.

    Raises:
        InputError: naming the file and what is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the series list ({exc})") from None
    if path.suffix.lower() == ".csv":
        rows: list = list(csv.DictReader(text.splitlines()))
        if rows and not {"study", "series"} <= set(rows[0]):
            raise InputError(f"{path}: a series list in CSV needs the columns study and series")
    else:
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"{path}: a series list is a JSON list of objects with \"study\" and \"series\"")
    out = []
    for i, row in enumerate(rows, start=1):
        study, series = str(row.get("study") or "").strip(), str(row.get("series") or "").strip()
        if not study or not series:
            raise InputError(f"{path}: entry {i} needs a study and a series UID")
        out.append((study, series))
    if not out:
        raise InputError(f"{path}: no series listed")
    seen: set[str] = set()
    for _, series in out:
        if series in seen:
            raise InputError(f"{path}: series {series} is listed twice")
        seen.add(series)
    return out


def segment_pacs_series(server: PacsServer, series: Sequence[tuple[str, str]],
                        segmenter_for: Callable[[str | torch.device], Segmenter2D], output_dir: str | os.PathLike,
                        options: CaseOptions = CaseOptions(), prompts_file: PromptsFile | None = None,
                        boxes: Sequence[BoxPrompt] = (), store: bool = False, device: str = "auto",
                        on_case: Callable[[CaseResult], None] | None = None,
                        on_failures: Callable[[Sequence[CaseResult]], None] | None = None,
                        progress: bool = False) -> FolderResult:
    """Segment each ``(study, series)`` of ``server`` into ``output_dir`` as
    ``<series UID>_seg.dcm`` (see the module docstring); prompts per case in ``prompts_file``
    are keyed by the series UID. The times table says of each case ``ok``, ``done before``
    or ``failed``, with its error, and is rewritten by each run.

    Raises:
        InputError: before any work, for an output folder that is a file or prompts for
            series not in the list.
    """
    from .. import distributed
    from ..fileutil import output_lock

    out_dir = Path(output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: the output of a batch of series must be a folder")
    names = [uid_name(uid) for _, uid in series]
    unknown = prompts_file.unknown_cases(names) if prompts_file is not None else []
    if unknown:
        raise InputError(f"{prompts_file.path if prompts_file else ''}: case(s) not in the series list: "
                         f"{', '.join(unknown[:5])}")
    jobs = [(study, uid, out_dir / f"{name}_seg.dcm") for (study, uid), name in zip(series, names)]
    env = distributed.read_env()
    out_dir.mkdir(parents=True, exist_ok=True)   # by every process: none may write before it is there
    with output_lock(out_dir) if env.is_main else contextlib.nullcontext():
        results = run_jobs(jobs, segmenter_for, lambda job, segmenter: _one_series(
            server, *job, segmenter, options, prompts_file, boxes, store), device, on_case, progress, env)
        if env.is_main:   # each run's tables describe that run: they are replaced
            write_times(results, out_dir, replace(options, overwrite=True), on_failures)
    return FolderResult(tuple(results), out_dir, out_dir / TIMES_NAME, env.world_size)


def _one_series(server: PacsServer, study: str, series: str, output: Path, segmenter: Segmenter2D,
                options: CaseOptions, prompts_file: PromptsFile | None, boxes: Sequence[BoxPrompt],
                store: bool) -> CaseResult:
    start, name = time.perf_counter(), uid_name(series)
    try:
        if output.exists() and not options.overwrite:     # an earlier run's: resumed, not redone
            result = CaseResult(name, Path(name), output, done_before=True)
        else:
            with pacs_case(server, study, series, output, options, prompts_file, boxes, store) as prepared:
                result = replace(segment_prepared(prepared, segmenter, options), case=name, path=Path(name))
        if store:
            store_result(server, result)
        return replace(result, seconds=time.perf_counter() - start)
    except Exception as exc:  # no failure of one case may stop the others
        error = exc if isinstance(exc, MedSAMError) else as_failure(exc, f"series {series}")
        return CaseResult(name, Path(name), output, seconds=time.perf_counter() - start, error=error)
