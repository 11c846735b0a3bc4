"""The protocol's results page: ``index.html`` / ``index.md`` in the output folder, with
every table and plot of the run, and ``medsam report``'s folder per box setting."""

from __future__ import annotations

import os
import platform
import shlex
from pathlib import Path
from typing import Sequence

import numpy as np

from ..datasets.description import Description
from ..evaluation.compare import compare_methods
from ..evaluation.report import ReportConfig, build_report, write_index
from ..evaluation.results import ResultRow, read_results
from ..evaluation.stats import paired_wilcoxon
from ..evaluation.summary import tolerance_description
from ..evaluation.units import by_image, objects_per_image, pooled_by_image
from .config import FINETUNED, PUBLISHED, SAM, UNET, ProtocolConfig, category
from .layout import evaluation_cases, manifest_rows, read_steps, unet_folder, weights_file
from .methods import Methods

Section = tuple[str, str, list[str]]


def command_line(config: ProtocolConfig) -> str:
    """The ``medsam reproduce`` command that runs ``config``."""
    parts = ["medsam", "reproduce", "-o", str(config.out), "--description", str(config.description)]
    if config.data_root is not None:
        parts += ["--data", str(config.data_root)]
    parts += ["--finetune-minutes", f"{config.finetune_minutes:g}", "--unet-minutes",
              f"{config.unet_minutes:g}"]
    if config.nsd_diagonal is not None:
        parts += ["--nsd-diagonal", f"{config.nsd_diagonal:g}"]
    if config.max_cases is not None:
        parts += ["--max-cases", str(config.max_cases)]
    return shlex.join(parts)


def load_tables(out: Path, setting: str) -> dict[str, list[ResultRow]]:
    """Method -> rows of every dataset's results for one box setting."""
    tables: dict[str, list[ResultRow]] = {}
    for path in sorted((out / "results" / setting).glob("*.csv")):
        for row in read_results(path):
            tables.setdefault(row.method, []).append(row)
    order = [PUBLISHED, FINETUNED, UNET, SAM]
    return {m: tables[m] for m in sorted(tables, key=lambda m: order.index(m) if m in order else 9)}


def _pct(values: Sequence[float]) -> str:
    v = 100 * np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "n/a"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def _task_groups(tables: dict[str, list[ResultRow]], description: Description) -> list[tuple[str, int]]:
    """(task, label) of every row, in the description's order, then by label."""
    order = [s.name for s in description.datasets]
    return sorted({(r.task, r.label) for rows in tables.values() for r in rows},
                  key=lambda g: (order.index(g[0]) if g[0] in order else 99, g[1]))


def _task_name(task: str, label: int, description: Description) -> str:
    spec = next((s for s in description.datasets if s.name == task), None)
    return task if spec is None or spec.classes is None else f"{task}: {spec.class_name(label)}"


def _role(task: str, description: Description) -> str:
    return "external" if any(s.name == task and s.external for s in description.datasets) else "internal"


def image_diagonals(manifest: Sequence[dict]) -> dict[str, tuple[int, int]]:
    """Dataset -> the median (height, width) of its evaluation images (the manifest's
    validation rows), 2D images only."""
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for r in manifest:
        if r["split"] == "validation" and int(r["slice"]) < 0:
            sizes.setdefault(r["dataset"], {})[r["case"]] = (int(r["height"]), int(r["width"]))
    return {d: (int(np.median([h for h, _ in v.values()])), int(np.median([w for _, w in v.values()])))
            for d, v in sizes.items()}


def accuracy_markdown(tables: dict[str, list[ResultRow]], description: Description,
                      sizes: dict[str, tuple[int, int]] | None = None) -> str:
    """Per task and label: images (and objects), then each method's DSC and NSD, median
    [IQR] in % over the images; one table per NSD tolerance, named in its NSD headers.
    ``sizes`` (dataset -> median image (height, width)): a tolerance in pixels is also
    given as a share of that image's diagonal."""
    methods = list(tables)
    images = {m: by_image(rows) for m, rows in tables.items()}
    groups = _task_groups(tables, description)

    def rows_of(source: dict[str, list[ResultRow]], m: str, g: tuple[str, int]) -> list[ResultRow]:
        return [r for r in source[m] if (r.task, r.label) == g]

    tolerance = {g: tolerance_description(r for m in methods for r in rows_of(tables, m, g)) for g in groups}
    pixels = {g: next(r.nsd_tolerance for m in methods for r in rows_of(tables, m, g)) for g in groups}
    objects = {g: max(len(rows_of(tables, m, g)) for m in methods) for g in groups}
    counts = {g: max(len(rows_of(images, m, g)) for m in methods) for g in groups}
    show_objects = any(objects[g] != counts[g] for g in groups)
    parts = []
    for rule in dict.fromkeys(tolerance.values()):
        in_pixels = rule.endswith(" px") and sizes is not None
        header = ["task", "role", "n (images)"] + (["objects scored one by one"] if show_objects else []) + \
            [f"{m} DSC" for m in methods] + [f"{m} NSD ({rule})" for m in methods] + \
            ([f"{rule} / image diagonal"] if in_pixels else [])
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for g in (g for g in groups if tolerance[g] == rule):
            cells = [_task_name(*g, description), _role(g[0], description), str(counts[g])]
            cells += [str(objects[g]) if objects[g] != counts[g] else "-"] if show_objects else []
            cells += [_pct([r.dsc for r in rows_of(images, m, g)]) for m in methods]
            cells += [_pct([r.nsd for r in rows_of(images, m, g)]) for m in methods]
            if in_pixels:
                cells.append(_share_of_diagonal(pixels[g], (sizes or {}).get(g[0])))
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    lead = ("DSC and NSD in %, median [interquartile range] over the images (n), one value per image "
            "or volume and label: each label of an image is scored on the union of its objects; "
            "instances (stardist's nuclei) are scored one by one and averaged within their image, "
            "so their image counts once (the objects column counts them; -: no instances). The NSD "
            "tolerance is in each table's NSD headers: in mm for volumes and images with a pixel "
            "size; in pixels at the image's own resolution for images without one, where the last "
            "column says how strict that is.\n\n")
    return lead + "\n".join(parts)


def _share_of_diagonal(pixels: float, size: tuple[int, int] | None) -> str:
    """A tolerance of ``pixels`` as a share of the diagonal of an image of ``size``."""
    if size is None:
        return "n/a"
    return f"{100 * pixels / float(np.hypot(*size)):.2f} % ({size[0]} x {size[1]} px)"


def objects_markdown(tables: dict[str, list[ResultRow]], description: Description) -> str:
    """The secondary analysis, every object a case, for the tasks whose images hold several
    objects: DSC median [IQR] and the published model's Wilcoxon tests against each
    other method, unadjusted and descriptive only; "" when no image holds several."""
    counts = objects_per_image(r for rows in tables.values() for r in rows)
    tasks = {(t, lab) for (_, t, lab), n in counts.items() if n > 1}
    if not tasks:
        return ""
    methods = list(tables)
    tests = {}
    if PUBLISHED in tables and len(tables) > 1:
        subset = {m: [r for r in rows if (r.task, r.label) in tasks] for m, rows in tables.items()}
        tests = {(c.task, c.label, c.method_b): c for c in compare_methods(
            subset, ("dsc",), baseline=PUBLISHED, allow_missing=True, unit="object")}
    lines = ["| task | images | objects | " + " | ".join(f"{m} DSC" for m in methods) + " | " +
             " | ".join(f"{PUBLISHED} - {m}: median, p" for m in methods if m != PUBLISHED) + " |"]
    lines.append("|" + "---|" * (3 + len(methods) + len([m for m in methods if m != PUBLISHED])))
    for g in (g for g in _task_groups(tables, description) if g in tasks):
        rows = {m: {r.case: r for r in tables[m] if (r.task, r.label) == g} for m in methods}
        images = {r.image for v in rows.values() for r in v.values()}
        cells = [_task_name(*g, description), str(len(images)), str(max(len(v) for v in rows.values()))]
        cells += [_pct([r.dsc for r in rows[m].values()]) for m in methods]
        for m in methods:
            test = tests.get((*g, m))
            if test is not None:
                p = "n/a" if np.isnan(test.pvalue) else f"{test.pvalue:.2g}"
                cells.append(f"{100 * test.median_difference:+.1f}, p {p}")
        lines.append("| " + " | ".join(cells) + " |")
    return ("Secondary analysis, every object counted as a case. Objects of one image share its "
            "acquisition, preparation and annotator, so they are not independent: the p-values "
            "below are unadjusted and descriptive only, and the tests of the primary analysis "
            "(one value per image) are the ones to report.\n\n" + "\n".join(lines) + "\n")


def gain_markdown(tables_by_setting: dict[str, dict[str, list[ResultRow]]],
                  description: Description) -> str:
    """Fine-tuned minus published DSC, pooled over the internal and over the external
    tasks, one value per task and image (the mean over its labels and objects), paired
    by task and image."""
    external = {s.name for s in description.datasets if s.external}
    lines = ["| boxes | tasks | n (images) | objects | published DSC % | fine-tuned DSC % | "
             "median difference [IQR] (points) | Wilcoxon p |", "|---|---|---|---|---|---|---|---|"]
    for setting, tables in tables_by_setting.items():
        if PUBLISHED not in tables or FINETUNED not in tables:
            continue
        tuned = {(r.task, r.image): r for r in pooled_by_image(tables[FINETUNED])}
        for group in ("internal", "external"):
            objects = sum((r.task in external) == (group == "external") for r in tables[PUBLISHED])
            pairs = [(r.dsc, tuned[(r.task, r.image)].dsc) for r in pooled_by_image(tables[PUBLISHED])
                     if (r.task, r.image) in tuned and (r.task in external) == (group == "external")]
            if not pairs:
                continue
            a, b = np.array(pairs).T
            test = paired_wilcoxon(b, a)
            q1, q3 = np.percentile(100 * (b - a), [25, 75])
            p = "n/a" if np.isnan(test.pvalue) else f"{test.pvalue:.2g}"
            lines.append(f"| {setting} | {group} | {len(pairs)} | {objects} | {_pct(a)} | {_pct(b)} | "
                         f"{100 * test.median_difference:+.1f} [{q1:+.1f}, {q3:+.1f}] | {p} |")
    return ("Fine-tuned minus published DSC, pooled over the internal and over the external tasks: "
            "one value per task and image (the mean over its labels and objects, so an image with "
            "14 organs or 125 nuclei counts once), paired by image; DSC median [IQR]; objects: the "
            "rows the images' values come from. Two-sided Wilcoxon signed-rank tests, one per "
            "line, not adjusted.\n\n" + "\n".join(lines) + "\n")


def _machine() -> str:
    import torch

    from .. import __version__

    return (f"{platform.platform()}, {os.cpu_count()} CPU cores ({platform.processor() or 'cpu'}), "
            f"Python {platform.python_version()}, torch {torch.__version__}, medsam {__version__}")


def _run_section(config: ProtocolConfig) -> Section:
    steps = read_steps(config.out)
    lines = [f"Command: `{command_line(config)}`", "", f"Machine: {_machine()}", "",
             "| step | minutes | finished | note |", "|---|---|---|---|"]
    for step, info in steps.items():
        lines.append(f"| {step} | {info['seconds'] / 60:.1f} | {info['finished']} | {info['note']} |")
    total = sum(info["seconds"] for info in steps.values()) / 60
    lines.append(f"| all | {total:.1f} | | |")
    return ("How this run was made", "\n".join(lines) + "\n", [])


def _data_section(config: ProtocolConfig, description: Description) -> Section:
    rows = manifest_rows(config.out)
    lines = ["| dataset | modality | U-Net category | role | train / tune / validation cases |",
             "|---|---|---|---|---|"]
    for spec in description.datasets:
        counts = [len({r["case"] for r in rows if r["dataset"] == spec.name and r["split"] == split})
                  for split in ("train", "tune", "validation")]
        role = "external (never trained on)" if spec.external else "internal"
        lines.append(f"| {spec.name} | {spec.modality} | {category(spec.modality)} | {role} | "
                     f"{' / '.join(map(str, counts))} |")
    evaluated = sum(len(evaluation_cases(rows, s.name)) > 0 for s in description.datasets)
    return ("Data", f"Description: `{config.description}`; {evaluated} datasets have evaluation "
            f"cases (their validation split, or every case of an external dataset).\n\n"
            + "\n".join(lines) + "\n", [])


def _methods_section(config: ProtocolConfig, description: Description) -> Section:
    steps = read_steps(config.out)
    sam = (f"{SAM}: zero-shot with `{config.sam_weights}`." if Methods(config).sam_available() else
           f"{SAM}: **not run: weights absent** (`{config.sam_weights}` is not in the weights "
           f"cache; `medsam weights download {config.sam_weights}` fetches it, then run again "
           f"with the predict and report steps redone).")
    lines = [
        f"- {PUBLISHED}: the published weights (`{config.published}`, the package default), zero-shot.",
        f"- {FINETUNED}: the mask decoder fine-tuned on the training split with the paper's recipe "
        f"(Dice + cross-entropy, AdamW lr 1e-4, weight decay 0.01, boxes grown by 0-20 px), "
        f"on cached image embeddings, within {config.finetune_minutes:g} minutes: "
        f"{steps.get('finetune', {}).get('note', 'not run')}.",
        f"- {UNET}: one MONAI DynUNet per image category, trained from scratch on the box crops "
        f"(AdamW lr 1e-3, same loss and boxes) within {config.unet_minutes:g} minutes each: "
        f"{steps.get('unet', {}).get('note', 'not run')}.",
        f"- {sam}",
    ]
    untrained = sorted({category(s.modality) for s in description.datasets
                        if weights_file(unet_folder(config.out, category(s.modality))) is None})
    if untrained:
        lines.insert(3, f"- No {UNET} for {', '.join(untrained)}: no training data of that category, "
                        f"so its tasks have no {UNET} scores (n/a).")
    return ("Methods", "\n".join(lines) + "\n", [])


def _section_text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def write_page(config: ProtocolConfig, description: Description) -> str:
    """Build the per-setting reports and the results page; returns a one-line note."""
    out = config.out
    sections = [_run_section(config), _data_section(config, description),
                _methods_section(config, description)]
    tables_by_setting = {}
    for setting in config.settings:
        tables = load_tables(out, setting)
        if not tables:
            continue
        tables_by_setting[setting] = tables
        report = ReportConfig(baseline=PUBLISHED if PUBLISHED in tables else None, family="task",
                              allow_missing=True)
        build_report(tables, out / "report" / setting, report, overwrite=True)
        folder = f"report/{setting}"
        text = accuracy_markdown(tables, description, image_diagonals(manifest_rows(out))) + "\n" + \
            _section_text(out / "report" / setting / "comparison.md")
        sections.append((f"Accuracy with {setting} boxes", text,
                         [f"{folder}/boxplot_dsc.png", f"{folder}/boxplot_nsd.png"]))
        objects = objects_markdown(tables, description)
        if objects:
            sections.append((f"Objects as cases with {setting} boxes (secondary analysis)", objects, []))
    if tables_by_setting:
        sections.append(("Fine-tuning: gain or loss on internal and external tasks",
                         gain_markdown(tables_by_setting, description), []))
    sections += _volume_sections(out) + _rater_sections(out, config.tolerance)
    write_index(out, "MedSAM's evaluation protocol, reproduced", sections)
    return f"{len(sections)} sections in index.html"


def _volume_sections(out: Path) -> list[Section]:
    path = out / "volumes" / "volume_agreement.csv"
    if not path.is_file():
        return []
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return [("Tumour burden", "No 3D lesion dataset (key-slice prompts) was evaluated.\n", [])]
    lines = ["| dataset | method | n | Pearson r [95% CI] | bias (mL) | limits of agreement (mL) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['method']} | {r['n']} | {float(r['pearson_r']):.3f} "
                     f"[{float(r['r_ci_low']):.3f}, {float(r['r_ci_high']):.3f}] | "
                     f"{float(r['bias_ml']):+.2f} | {float(r['loa_low_ml']):+.2f} to "
                     f"{float(r['loa_high_ml']):+.2f} |")
    images = sorted(f"volumes/{p.name}" for p in (out / "volumes").glob("*.png"))
    text = ("Lesions segmented in 3D from one box on the key slice (the slice where the reference "
            "is largest), propagated until the mask vanishes; volumes against the references.\n\n"
            + "\n".join(lines) + "\n")
    return [("Tumour burden", text, images)]


def _rater_sections(out: Path, tolerance: float) -> list[Section]:
    import csv

    sections = []
    for folder in sorted((out / "raters").glob("*")) if (out / "raters").is_dir() else []:
        with open(folder / "experts_scores.csv", newline="") as f:
            raters = {r["participant"] for r in csv.DictReader(f) if r["participant"] != PUBLISHED}
        two = ("With two raters, the consensus of the others is simply the other rater's mask "
               "(a rater against it is rater-to-rater agreement), and the consensus of all is the "
               "voxels both marked (a tie is background). " if len(raters) == 2 else "")
        text = (f"The published model (tight boxes drawn from the dataset's reference masks, one "
                f"per connected object) against the {len(raters)} raters of {folder.name}: each rater "
                f"is scored against the consensus (majority vote) of the others, and the model "
                f"against the same consensuses and the consensus of all. {two}NSD at {tolerance:g} mm, "
                f"or {tolerance:g} px for images without a pixel size. This is not the paper's "
                f"experiment (6 experts on 52 prostate MR cases), only its design.\n\n"
                + _section_text(folder / "experts.md"))
        sections.append((f"Human raters: {folder.name}", text, [f"raters/{folder.name}/experts.png"]))
    return sections
