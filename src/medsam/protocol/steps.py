"""The steps of ``medsam reproduce`` and the resumable run that chains them.

Each step writes its part of the output folder (:mod:`.layout`). A step recorded in
``steps.json`` is not run again (``redo`` runs it again), except the steps marked
``always`` (the results page, rebuilt from whatever is there); within a step, training
resumes from its ``resume.pt`` and prediction skips the datasets whose results exist
for the same methods, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..datasets.description import Description
from .config import PUBLISHED, STEPS, ProtocolConfig, load_protocol_description, training_estimate
from .layout import STEPS_FILE, evaluation_cases, manifest_rows, read_steps, train_datasets, unet_folder, write_json
from .methods import Methods
from .page import write_page


def _train(config: ProtocolConfig, folder: Path, settings: dict) -> str:
    from ..training.config import make_config
    from ..training.trainer import train

    resume = (folder / "resume.pt").is_file()
    train_config = make_config({
        "data": str(config.out / "prepared"), "out": str(folder), "epochs": 10_000,
        "weight_decay": 0.01, "box_shift": 20.0, "device": config.device, "seed": config.seed,
        "progress": config.progress, **settings})
    result = train(train_config, resume=resume, overwrite=not resume)
    best = "n/a" if result.best_dsc is None else f"{100 * result.best_dsc:.1f}%"
    return (f"{len(result.history)} epochs in this session"
            f"{', stopped by the time budget' if result.out_of_time else ''}; best tuning DSC {best}")


def step_prepare(config: ProtocolConfig, description: Description) -> str:
    from ..training.prepare import prepare

    summary = prepare(description, config.out / "prepared", progress=config.progress)
    counts = ", ".join(f"{split} {n}" for split, n in summary.objects.items())
    return f"objects: {counts}; {len(summary.failures)} cases failed"


def step_finetune(config: ProtocolConfig, description: Description) -> str:
    """LiteMedSAM's mask decoder fine-tuned with the paper's recipe on cached embeddings."""
    return _train(config, config.out / "train" / "finetune", {
        "variant": "lite", "init": config.published, "batch_size": config.finetune_batch,
        "lr": 1e-4, "freeze_image_encoder": True, "cache_embeddings": True,
        "max_minutes": config.finetune_minutes})


def step_unet(config: ProtocolConfig, description: Description) -> str:
    """One U-Net per image category that has training data, from scratch."""
    notes = []
    for name, datasets in train_datasets(manifest_rows(config.out), description).items():
        note = _train(config, unet_folder(config.out, name), {
            "variant": "unet", "init": "scratch", "datasets": ",".join(datasets),
            "batch_size": config.unet_batch, "lr": 1e-3, "max_minutes": config.unet_minutes})
        notes.append(f"{name} ({', '.join(datasets)}): {note}")
    return "; ".join(notes)


def step_predict(config: ProtocolConfig, description: Description) -> str:
    from ..evaluation.results import write_results
    from .predict import evaluate_methods

    rows = manifest_rows(config.out)
    methods = Methods(config)
    done, skipped = [], []
    for spec in description.datasets:
        cases = evaluation_cases(rows, spec.name)[:config.max_cases]
        if not cases:
            skipped.append(spec.name)
            continue
        segmenters = methods.for_dataset(spec)
        record = config.out / "results" / f"{spec.name}.json"
        wanted = {"methods": list(segmenters), "cases": cases, "settings": list(config.settings),
                  "tolerance": config.tolerance, "nsd_diagonal": config.nsd_diagonal}
        if record.is_file() and json.loads(record.read_text()) == wanted:
            done.append(spec.name)
            continue
        results = evaluate_methods(spec, segmenters, set(cases), config.settings, description.seed,
                                   config.tolerance, progress=config.progress,
                                   diagonal_pct=config.nsd_diagonal)
        for setting, result_rows in results.items():
            path = config.out / "results" / setting / f"{spec.name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            if result_rows:  # none when no case kept an object big enough for a box
                write_results(result_rows, path)
        write_json(record, wanted)
        done.append(spec.name)
    return (f"{len(done)} datasets scored" +
            (f"; no evaluation case in {', '.join(skipped)} (training only)" if skipped else ""))


def step_volumes(config: ProtocolConfig, description: Description) -> str:
    """Volume agreement of each method on the 3D lesion datasets (key-slice prompts)."""
    from ..evaluation.results import read_results
    from ..evaluation.units import by_image
    from ..evaluation.volumes import AGREEMENT_COLUMNS, volume_agreement, volume_pairs, write_agreement
    from ..fileutil import write_csv

    folder = config.out / "volumes"
    folder.mkdir(parents=True, exist_ok=True)
    notes, table = [], []
    for spec in description.datasets:
        path = config.out / "results" / "tight" / f"{spec.name}.csv"
        if spec.prompt != "key_slice" or not path.is_file():
            continue
        rows = read_results(path)
        for method in dict.fromkeys(r.method for r in rows):
            pred, ref = volume_pairs(by_image(r for r in rows if r.method == method))
            if pred.size < 4:
                notes.append(f"{spec.name} {method}: {pred.size} volumes, too few for a correlation")
                continue
            agreement = volume_agreement(pred, ref)
            table.append([spec.name, *agreement.row(method)])
            safe = "".join(c if c.isalnum() else "_" for c in f"{spec.name}_{method}")
            write_agreement(pred, ref, agreement, folder / f"volumes_{safe}.png",
                            folder / f"bland_altman_{safe}.png", method=f"{method} ({spec.name})")
    write_csv(folder / "volume_agreement.csv", ["dataset", *AGREEMENT_COLUMNS], table)
    return f"{len(table)} agreements" + (f"; {'; '.join(notes)}" if notes else "")


def step_raters(config: ProtocolConfig, description: Description) -> str:
    """The published model against the human raters of every dataset that has them."""
    from ..evaluation.experts import write_expert_comparison
    from .predict import rater_scores

    methods = Methods(config)
    notes = []
    for spec in description.datasets:
        if not spec.raters:
            continue
        segmenter = methods.segmenter(config.published)
        scores = rater_scores(spec, segmenter, PUBLISHED, config.max_cases, config.tolerance,
                              config.progress)
        folder = config.out / "raters" / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        write_expert_comparison(scores, folder, PUBLISHED)
        notes.append(f"{spec.name}: {len({s.case for s in scores})} cases")
    return "; ".join(notes) or "no dataset has raters"


@dataclass(frozen=True)
class Step:
    """A step of the protocol: ``run(config, description)`` -> a one-line note;
    ``always``: run even when ``steps.json`` records it as done."""

    run: Callable[[ProtocolConfig, Description], str]
    always: bool = False


#: the steps, by name, in :data:`~medsam.protocol.config.STEPS` order
STEP_TABLE: dict[str, Step] = {
    "prepare": Step(step_prepare), "finetune": Step(step_finetune), "unet": Step(step_unet),
    "predict": Step(step_predict), "volumes": Step(step_volumes), "raters": Step(step_raters),
    "report": Step(write_page, always=True),
}


def run_protocol(config: ProtocolConfig, redo: bool = False,
                 log: Callable[[str], None] | None = None) -> Path:
    """Run the selected steps in order (see the module docstring); returns ``index.html``.
    ``log`` receives one line per step (start, and its note with its time when done)."""
    description = load_protocol_description(config)
    config.out.mkdir(parents=True, exist_ok=True)
    record = read_steps(config.out)
    say = log or (lambda line: None)
    if any(s in config.steps and (redo or s not in record) for s in ("finetune", "unet")):
        say(f"estimate: {training_estimate(config, description)}")
    for step in STEPS:
        if step not in config.steps or (step in record and not redo and not STEP_TABLE[step].always):
            continue
        say(f"{step}: running")
        start = time.perf_counter()
        note = STEP_TABLE[step].run(config, description)
        seconds = time.perf_counter() - start
        record = {**read_steps(config.out), step: {"seconds": round(seconds, 1), "note": note,
                                                    "finished": time.strftime("%Y-%m-%d %H:%M:%S")}}
        write_json(config.out / STEPS_FILE, record)
        say(f"{step}: {note} ({seconds / 60:.1f} min)")
    return config.out / "index.html"
