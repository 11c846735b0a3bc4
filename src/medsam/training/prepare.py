"""``medsam prepare``: curate datasets into a training set (see
:mod:`~medsam.datasets.description`, :mod:`~medsam.training.curation`).

Output folder layout::

    OUT/manifest.csv           one row per object per slice, with its split
    OUT/failures.csv           cases that could not be read (reported, not fatal)
    OUT/data/<dataset>/<case>/<slice>.npz
    OUT/cases/<dataset>/<case>.json    per-case results (what makes runs resumable)
    OUT/cases/<dataset>.spec.json      the dataset's settings when it was prepared

Cases whose result file exists are not processed again, so an interrupted run
resumes where it stopped, and adding a dataset to the description only processes
the new one. A dataset whose settings changed is redone.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from ..datasets.cases import CaseFiles, find_dataset_cases
from ..datasets.description import DatasetSpec, Description
from ..errors import InputError
from ..fileutil import atomic_path
from .curation import process_case
from .manifest import MANIFEST_NAME, SPLITS, assign_splits, write_manifest


@dataclass(frozen=True)
class PrepareSummary:
    """What a run produced: object counts per split, cases processed now / reused,
    and the failed cases with their errors."""

    manifest: Path
    objects: dict[str, int]
    cases_processed: int
    cases_reused: int
    failures: tuple[tuple[str, str, str], ...]


def _spec_record(spec: DatasetSpec) -> dict:
    record = asdict(spec)
    record["root"] = str(spec.root)
    return json.loads(json.dumps(record, default=str))


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data), encoding="utf-8")


def _sync_dataset_state(spec: DatasetSpec, out: Path) -> None:
    """Forget a dataset's earlier results when its settings changed."""
    spec_file = out / "cases" / f"{spec.name}.spec.json"
    record = _spec_record(spec)
    if spec_file.is_file() and json.loads(spec_file.read_text()) == record:
        return
    for folder in (out / "cases" / spec.name, out / "data" / spec.name):
        if folder.exists():
            shutil.rmtree(folder)
    _write_json(spec_file, record)


def _run_case(spec: DatasetSpec, files: CaseFiles, out: Path) -> dict:
    result = process_case(spec, files, out)
    _write_json(out / "cases" / spec.name / f"{files.case}.json", result)
    return result


def prepare(description: Description, out: str | os.PathLike, workers: int = 0,
            overwrite: bool = False, progress: bool = True) -> PrepareSummary:
    """Prepare every dataset of ``description`` into ``out``.

    ``workers``: processes to use (0 = this process). Input problems found before
    processing (no matching image, missing label file) and labels absent from every
    mask raise :class:`InputError`; unreadable cases are listed in ``failures.csv``.
    """
    from ..progress import progress_bar

    out = Path(out)
    if overwrite and out.exists():
        for name in ("cases", "data", MANIFEST_NAME, "failures.csv"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    cases = {spec.name: find_dataset_cases(spec) for spec in description.datasets}  # check all first
    out.mkdir(parents=True, exist_ok=True)
    results: dict[tuple[str, str], dict] = {}
    todo = []
    for spec in description.datasets:
        _sync_dataset_state(spec, out)
        for files in cases[spec.name]:
            done = out / "cases" / spec.name / f"{files.case}.json"
            if done.is_file():
                results[spec.name, files.case] = json.loads(done.read_text())
            else:
                todo.append((spec, files))
    reused = len(results)
    bar = progress_bar(total=len(todo), desc="prepare", unit="case", enabled=progress)
    if workers > 0 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_run_case, spec, files, out): (spec.name, files.case)
                       for spec, files in todo}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    else:
        for spec, files in todo:
            results[spec.name, files.case] = _run_case(spec, files, out)
            bar.update()
    bar.close()
    return _assemble(description, cases, results, out, processed=len(todo), reused=reused)


def _group_splits(description: Description, cases: dict[str, list[CaseFiles]],
                  results: dict[tuple[str, str], dict]) -> dict[str, dict[str, str]]:
    """Split group -> case id -> split, drawn once over the union of the group's cases
    (seeded by the group's name), so a patient's case in two datasets shares one split."""
    members: dict[str, set[str]] = {}
    external: dict[str, bool] = {}
    for spec in description.datasets:
        if spec.split_group is None:
            continue
        ids = {c.case for c in cases[spec.name] if results[spec.name, c.case]["error"] is None
               and results[spec.name, c.case]["entries"]}
        members.setdefault(spec.split_group, set()).update(ids)
        external[spec.split_group] = external.get(spec.split_group, False) or spec.external
    return {group: assign_splits(sorted(ids), group, description.seed, description.split,
                                 external[group]) for group, ids in members.items()}


def _assemble(description: Description, cases: dict[str, list[CaseFiles]],
              results: dict[tuple[str, str], dict], out: Path, processed: int,
              reused: int) -> PrepareSummary:
    rows, failures = [], []
    grouped = _group_splits(description, cases, results)
    for spec in description.datasets:
        names = [c.case for c in cases[spec.name]]
        good = [n for n in names if results[spec.name, n]["error"] is None]
        failures += [(spec.name, n, results[spec.name, n]["error"]) for n in names
                     if results[spec.name, n]["error"] is not None]
        if spec.classes is not None and good:
            present = set().union(*(results[spec.name, n]["present"] for n in good))
            absent = [f"{label} ({name})" for label, name in spec.classes if label not in present]
            if absent:
                raise InputError(f"dataset {spec.name!r}: labels {', '.join(absent)} are absent "
                                 f"from every mask")
        with_objects = [n for n in good if results[spec.name, n]["entries"]]
        splits = grouped.get(spec.split_group or "") or assign_splits(
            with_objects, spec.name, description.seed, description.split, spec.external)
        for n in with_objects:
            rows += [{**entry, "split": splits[n]} for entry in results[spec.name, n]["entries"]]
    manifest = write_manifest(rows, out / MANIFEST_NAME)
    with atomic_path(out / "failures.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "case", "error"])
        writer.writerows(failures)
    counts = {split: sum(r["split"] == split for r in rows) for split in SPLITS}
    return PrepareSummary(manifest, counts, processed, reused, tuple(failures))
