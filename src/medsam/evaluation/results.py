"""Result tables: one row per (task, method, case, label), as CSV.

Columns (:data:`RESULT_COLUMNS`): ``task, method, case, label, dsc, nsd, hd95,
gt_voxels, pred_voxels, gt_volume, pred_volume, volume_unit, nsd_tolerance,
nsd_diagonal_pct, image``. Volumes are in ``volume_unit``: ``mL`` for 3D masks, ``mm2`` for
2D, or ``voxels`` / ``pixels`` (counts) for images without a physical pixel size, whose
``hd95`` and NSD tolerance are then in pixels; otherwise ``hd95`` is in mm (``inf``
when exactly one mask is empty).

``image`` is the image or volume a row belongs to: the case itself for a label scored
on a whole image, or the image of an object scored on its own (case
``<image>#<object>``, see :func:`object_case`): objects of one image are not
independent cases (:mod:`medsam.evaluation.units`). Tables without the ``image`` and
tolerance columns (written by medsam before 0.2) are read with ``image`` = ``case`` and
the tolerance not recorded. Reading checks every row and raises
:class:`medsam.errors.InputError` naming the file and line of a bad one.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..fileutil import write_csv
from ..metrics.case import CaseMetrics

__all__ = ["RESULT_COLUMNS", "ResultRow", "load_tables", "object_case", "read_results", "write_results",
           "rows_from_metrics"]


@dataclasses.dataclass(frozen=True)
class ResultRow(CaseMetrics):
    """One row of a result table: a case's :class:`~medsam.metrics.case.CaseMetrics`
    with the task and the method they belong to (see the module docstring for units).
    Every metric is a field of ``CaseMetrics`` alone; the table has a column for each."""

    task: str = dataclasses.field(kw_only=True)
    method: str = dataclasses.field(kw_only=True)
    image: str = dataclasses.field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if not self.image:   # a whole-image row: its image is its case
            object.__setattr__(self, "image", self.case)

    @property
    def key(self) -> tuple[str, int, str]:
        """(task, label, case): what pairs rows of different methods."""
        return (self.task, self.label, self.case)


#: the columns of a result CSV: task, method, the fields of :class:`CaseMetrics` in order, image
RESULT_COLUMNS = ("task", "method", *(f.name for f in dataclasses.fields(CaseMetrics)), "image")
#: columns a table may lack (written before they existed), with the value they then take
#: ("" for ``image``: the row's case)
OPTIONAL_COLUMNS = {"image": "", "nsd_tolerance": "nan", "nsd_diagonal_pct": "0"}
_TYPES = {f.name: {"int": int, "float": float}.get(str(f.type), str) for f in dataclasses.fields(ResultRow)}


def object_case(image: str, number: int) -> str:
    """The case name of object ``number`` of ``image`` scored on its own: ``<image>#<number>``."""
    return f"{image}#{number}"


def rows_from_metrics(metrics: Iterable[CaseMetrics], task: str, method: str) -> list[ResultRow]:
    """Each of ``metrics`` as a row of ``task`` and ``method``."""
    return [ResultRow(task=task, method=method, **dataclasses.asdict(m)) for m in metrics]


#: column of a table written by an evaluation that did not score every case; its text
#: says what is missing
INCOMPLETE_COLUMN = "incomplete"


def write_results(rows: Iterable[ResultRow], path: str | os.PathLike, incomplete: str | None = None) -> Path:
    """Write result rows to ``path`` (CSV, atomically). ``incomplete``: the table is of an
    evaluation that failed some cases, and says so in every row (column
    :data:`INCOMPLETE_COLUMN`), so that it is refused wherever it is read, under any name."""
    if incomplete is None:
        return write_csv(path, RESULT_COLUMNS, ([getattr(r, c) for c in RESULT_COLUMNS] for r in rows))
    return write_csv(path, [*RESULT_COLUMNS, INCOMPLETE_COLUMN],
                     ([*(getattr(r, c) for c in RESULT_COLUMNS), f"INCOMPLETE: {incomplete}"] for r in rows))


def _row(raw: dict, path: Path, line: int) -> ResultRow:
    if None in raw:   # csv.DictReader files values beyond the header under None
        raise InputError(f"{path}, line {line}: {len(raw[None])} value(s) more than the header's "
                         f"{len(raw) - 1} columns")
    try:
        values: dict = {c: _TYPES[c](raw.get(c, OPTIONAL_COLUMNS.get(c))) for c in RESULT_COLUMNS}
    except (TypeError, ValueError):
        raise InputError(f"{path}, line {line}: bad value in {dict(raw)}") from None
    problem = _out_of_range(values)
    if problem:
        raise InputError(f"{path}, line {line}: {problem}")
    return ResultRow(**values)


def _out_of_range(values: dict) -> str:
    """What is wrong with a row's metric values, or "": DSC and NSD are fractions in
    [0, 1] (percentages are refused, not guessed: a table of fractions below 0.01 looks
    the same), HD95, voxel counts and volumes are >= 0 (HD95 may be inf), none is NaN."""
    for name in ("dsc", "nsd"):
        v = values[name]
        if not 0.0 <= v <= 1.0:   # NaN fails too
            hint = "; medsam tables hold fractions: divide percentages by 100" if 1 < v <= 100 else ""
            return f"{name} {v:g} is outside [0, 1]{hint}"
    for name in ("hd95", "gt_voxels", "pred_voxels", "gt_volume", "pred_volume"):
        v = values[name]
        if math.isnan(v) or v < 0 or (math.isinf(v) and name != "hd95"):
            return f"{name} {v:g} is not a size (must be >= 0)"
    if not (math.isnan(values["nsd_tolerance"]) or 0 < values["nsd_tolerance"] < math.inf):
        return f"nsd_tolerance {values['nsd_tolerance']:g} is not a distance (must be > 0)"
    if not 0 <= values["nsd_diagonal_pct"] <= 100:
        return f"nsd_diagonal_pct {values['nsd_diagonal_pct']:g} is outside [0, 100]"
    return ""


def read_results(path: str | os.PathLike, allow_incomplete: bool = False) -> list[ResultRow]:
    """Read a result CSV written by :func:`write_results` (``medsam evaluate``). A table
    marked incomplete is an :class:`InputError` unless ``allow_incomplete``."""
    path = Path(path)
    try:
        f = open(path, newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read result table ({exc.strerror})") from None
    with f:
        reader = csv.DictReader(f)
        try:
            fieldnames = reader.fieldnames
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path}: not a medsam result table (not a text CSV file: "
                             f"{type(exc).__name__})") from None
        missing = [c for c in RESULT_COLUMNS if c not in (fieldnames or []) and c not in OPTIONAL_COLUMNS]
        if missing:
            raise InputError(f"{path}: not a medsam result table; missing columns {', '.join(missing)}")
        rows = []
        marked = INCOMPLETE_COLUMN in (fieldnames or [])
        try:
            for line, raw in enumerate(reader, start=2):
                mark = raw.pop(INCOMPLETE_COLUMN, None) if marked else None
                if mark and not allow_incomplete:
                    raise InputError(f"{path}: {mark}", option="allow_incomplete")
                rows.append(_row(raw, path, line))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"{path}: not a medsam result table (line {reader.line_num}: "
                             f"{type(exc).__name__})") from None
    if not rows:
        raise InputError(f"{path}: result table has no rows")
    seen: set = set()
    for r in rows:
        k = (r.method, *r.key)
        if k in seen:
            raise InputError(f"{path}: duplicate row for task {r.task!r}, label {r.label}, case {r.case!r}")
        seen.add(k)
    return rows


def load_tables(paths: Sequence[str | os.PathLike], names: Sequence[str] | None = None,
                allow_incomplete: bool = False) -> tuple[dict[str, list[ResultRow]], dict[str, str]]:
    """Read result CSVs into ``{method: rows}`` (and ``{method: source file}``).

    Methods are named by the CSVs' ``method`` column (a file may hold several
    methods), or by ``names``, one per file, which requires one method per
    file. The same method in two files is an :class:`InputError`, and so is a table of an
    incomplete evaluation (marked in its rows) unless ``allow_incomplete``.
    """
    if names is not None and len(names) != len(paths):
        raise InputError(f"{len(names)} names given for {len(paths)} result files")
    tables: dict[str, list[ResultRow]] = {}
    sources: dict[str, str] = {}
    for i, path in enumerate(paths):
        rows = read_results(path, allow_incomplete)
        methods = list(dict.fromkeys(r.method for r in rows))
        if names is not None:
            if len(methods) > 1:
                raise InputError(f"{path}: holds methods {', '.join(methods)}; cannot rename it to {names[i]!r}")
            rows = [dataclasses.replace(r, method=names[i]) for r in rows]
            methods = [names[i]]
        for m in methods:
            if m in tables:
                raise InputError(f"{path}: method {m!r} also comes from {sources[m]}", option="names")
            tables[m] = [r for r in rows if r.method == m]
            sources[m] = str(path)
    return tables, sources
