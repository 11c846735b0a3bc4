"""Segmenting a series that lives on a PACS (DICOMweb, :mod:`medsam.io.dicomweb`).

The series is retrieved (WADO-RS) into a temporary folder and segmented as a local DICOM
series would be, with the same geometry, checks and outputs (:func:`~.batch.prepare_case`,
:func:`~.batch.segment_prepared`); a DICOM SEG written from it references the retrieved
instances by their UIDs, which are the PACS's own. :func:`store_result` sends that SEG back
(STOW-RS). The local output is always complete or absent: it is written (atomically) before
anything is stored, and a store that fails says so and names it.

    server = pacs_server("dicomweb://127.0.0.1:8042/dicom-web")
    with pacs_case(server, study, series, "seg.dcm", boxes=[BoxPrompt(...)]) as prepared:
        result = segment_prepared(prepared, make_segmenter(load_model()))
    store_result(server, result)
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import InputError
from ..io.dicomweb import PacsError, PacsServer, retrieve_series, store_files
from .batch import CaseOptions, CaseResult, PreparedCase, prepare_case
from .prompt_files import PromptsFile
from .prompts import BoxPrompt


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
        folder = retrieve_series(server, study, series, Path(tmp) / _safe(series))
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


def _safe(uid: str) -> str:
    """A series UID as a folder name (the case's name in reports)."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in uid)[:128] or "series"
