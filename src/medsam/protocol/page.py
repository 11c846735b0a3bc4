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
from ..evaluation.report import ReportConfig, build_report, write_index
from ..evaluation.results import ResultRow, read_results
from ..evaluation.stats import paired_wilcoxon
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


def accuracy_markdown(tables: dict[str, list[ResultRow]], description: Description) -> str:
    """Per task and label: cases, then each method's DSC and NSD, median [IQR] in %."""
    specs = {s.name: s for s in description.datasets}
    methods = list(tables)
    groups = sorted({(r.task, r.label) for rows in tables.values() for r in rows},
                    key=lambda g: ([s.name for s in description.datasets].index(g[0])
                                   if g[0] in specs else 99, g[1]))
    header = "| task | role | n | " + " | ".join(f"{m} DSC" for m in methods) + " | " + \
        " | ".join(f"{m} NSD" for m in methods) + " |"
    lines = [header, "|" + "---|" * (3 + 2 * len(methods))]
    for task, label in groups:
        spec = specs.get(task)
        name = task if spec is None or spec.classes is None else f"{task}: {spec.class_name(label)}"
        role = "external" if spec is not None and spec.external else "internal"
        rows = {m: [r for r in tables[m] if (r.task, r.label) == (task, label)] for m in methods}
        n = max(len(v) for v in rows.values())
        cells = [_pct([r.dsc for r in rows[m]]) for m in methods] + \
            [_pct([r.nsd for r in rows[m]]) for m in methods]
        lines.append(f"| {name} | {role} | {n} | " + " | ".join(cells) + " |")
    return ("DSC and NSD (2 mm, or 2 px where an image has no pixel size) in %, median "
            "[interquartile range] over the cases (each label of a case is scored on the union "
            "of its objects; instances, as stardist's nuclei, are scored one by one); n: cases "
            "(instances).\n\n" + "\n".join(lines) + "\n")


def gain_markdown(tables_by_setting: dict[str, dict[str, list[ResultRow]]],
                  description: Description) -> str:
    """Fine-tuned minus published DSC, paired by case and label, pooled over the internal
    and over the external tasks."""
    external = {s.name for s in description.datasets if s.external}
    lines = ["| boxes | tasks | n | published DSC % | fine-tuned DSC % | median difference (points) | "
             "Wilcoxon p |", "|---|---|---|---|---|---|---|"]
    for setting, tables in tables_by_setting.items():
        if PUBLISHED not in tables or FINETUNED not in tables:
            continue
        tuned = {r.key: r for r in tables[FINETUNED]}
        for group in ("internal", "external"):
            pairs = [(r.dsc, tuned[r.key].dsc) for r in tables[PUBLISHED] if r.key in tuned
                     and (r.task in external) == (group == "external")]
            if not pairs:
                continue
            a, b = np.array(pairs).T
            test = paired_wilcoxon(b, a)
            p = "n/a" if np.isnan(test.pvalue) else f"{test.pvalue:.3g}"
            lines.append(f"| {setting} | {group} | {len(pairs)} | {100 * np.median(a):.1f} | "
                         f"{100 * np.median(b):.1f} | {100 * test.median_difference:+.1f} | {p} |")
    return "\n".join(lines) + "\n"


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
        text = accuracy_markdown(tables, description) + "\n" + \
            _section_text(out / "report" / setting / "comparison.md")
        sections.append((f"Accuracy with {setting} boxes", text,
                         [f"{folder}/boxplot_dsc.png", f"{folder}/boxplot_nsd.png"]))
    if tables_by_setting:
        sections.append(("Fine-tuning: gain or loss on internal and external tasks",
                         gain_markdown(tables_by_setting, description), []))
    sections += _volume_sections(out) + _rater_sections(out)
    write_index(out, "MedSAM's evaluation protocol, reproduced", sections)
    return f"{len(sections)} sections in {out / 'index.html'}"


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


def _rater_sections(out: Path) -> list[Section]:
    sections = []
    for folder in sorted((out / "raters").glob("*")) if (out / "raters").is_dir() else []:
        text = (f"The published model (tight boxes drawn from the dataset's reference masks, one "
                f"per connected object) against the raters of {folder.name}: each rater is scored "
                f"against the consensus of the others, and the model against the same consensuses "
                f"and the consensus of all.\n\n"
                + _section_text(folder / "experts.md"))
        sections.append((f"Human raters: {folder.name}", text, [f"raters/{folder.name}/experts.png"]))
    return sections
