"""The steps of ``medsam reproduce`` and the resumable run that chains them.

Output folder::

    prepared/                  medsam prepare's output (split 80/10/10 by case; external
                               datasets are all validation)
    train/finetune/            LiteMedSAM fine-tuned (medsam train's run folder)
    train/unet_<category>/     one U-Net per image category with training data
    results/<setting>/<dataset>.csv   every method's rows (medsam evaluate's columns)
    volumes/  raters/<dataset>/        tumour-volume agreement, model against raters
    report/<setting>/          medsam report's folder per box setting
    steps.json                 each finished step's time and note
    index.html, index.md       everything on one page (:mod:`medsam.protocol.page`)

A step recorded in ``steps.json`` is not run again (``redo`` runs it again); within a
step, training resumes from its ``resume.pt`` and prediction skips the datasets whose
results exist for the same methods, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..datasets.description import DatasetSpec, Description, load_description, parse_description, read_structured_file
from ..fileutil import atomic_path, existing_folder
from .config import FINETUNED, PUBLISHED, SAM, STEPS, UNET, ProtocolConfig, category

STEPS_FILE = "steps.json"


def load_protocol_description(config: ProtocolConfig) -> Description:
    """The description, with its root replaced by ``config.data_root`` when given."""
    if config.data_root is None:
        return load_description(config.description)
    data = read_structured_file(config.description)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "root"}
    existing_folder(config.data_root, "data folder")
    return parse_description(data, Path(config.data_root), source=Path(config.description))


def read_steps(out: Path) -> dict[str, dict]:
    """Each finished step's record (seconds, note, finished) from ``steps.json``."""
    path = out / STEPS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def manifest_rows(out: Path) -> list[dict]:
    from ..training.manifest import read_manifest

    return read_manifest(out / "prepared")


def evaluation_cases(rows: list[dict], dataset: str) -> list[str]:
    """A dataset's validation cases (all of an external dataset's)."""
    return sorted({r["case"] for r in rows if r["dataset"] == dataset and r["split"] == "validation"})


def train_datasets(rows: list[dict], description: Description) -> dict[str, list[str]]:
    """Category -> the datasets with training objects (external ones have none)."""
    trained = {r["dataset"] for r in rows if r["split"] == "train"}
    out: dict[str, list[str]] = {}
    for spec in description.datasets:
        if spec.name in trained:
            out.setdefault(category(spec.modality), []).append(spec.name)
    return out


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
        note = _train(config, config.out / "train" / f"unet_{name}", {
            "variant": "unet", "init": "scratch", "datasets": ",".join(datasets),
            "batch_size": config.unet_batch, "lr": 1e-3, "max_minutes": config.unet_minutes})
        notes.append(f"{name} ({', '.join(datasets)}): {note}")
    return "; ".join(notes)


def weights_file(folder: Path) -> Path | None:
    """A run folder's best.pth, else last.pth (no tuning data), else None."""
    for name in ("best.pth", "last.pth"):
        if (folder / name).is_file():
            return folder / name
    return None


class Methods:
    """The methods' segmenters, each model loaded once, on first use."""

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self._models: dict[str, Any] = {}

    def segmenter(self, source: str) -> Any:
        """A fresh segmenter on the model of ``source`` (weights name or file)."""
        from ..checkpoint import load_model
        from ..segmentation.unet_segmenter import make_segmenter

        if source not in self._models:
            self._models[source] = load_model(source, device=self.config.device, progress=False)
        return make_segmenter(self._models[source], precision="exact")

    def sam_available(self) -> bool:
        """SAM's weights are cached (a registered name) or are a file at hand."""
        from ..weights import WEIGHTS, is_cached

        name = self.config.sam_weights
        return is_cached(name) if name in WEIGHTS else Path(name).is_file()

    def for_dataset(self, spec: DatasetSpec) -> dict[str, Any]:
        """Method name -> a fresh segmenter for ``spec`` (methods without weights left out)."""
        train = self.config.out / "train"
        sources = {PUBLISHED: self.config.published,
                   FINETUNED: weights_file(train / "finetune"),
                   UNET: weights_file(train / f"unet_{category(spec.modality)}"),
                   SAM: self.config.sam_weights if self.sam_available() else None}
        return {name: self.segmenter(str(source)) for name, source in sources.items()
                if source is not None}


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
        wanted = {"methods": list(segmenters), "cases": cases, "settings": list(config.settings)}
        if record.is_file() and json.loads(record.read_text()) == wanted:
            done.append(spec.name)
            continue
        results = evaluate_methods(spec, segmenters, set(cases), config.settings, description.seed,
                                   config.tolerance, progress=config.progress)
        for setting, result_rows in results.items():
            path = config.out / "results" / setting / f"{spec.name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            if result_rows:  # none when no case kept an object big enough for a box
                write_results(result_rows, path)
        _write_json(record, wanted)
        done.append(spec.name)
    return (f"{len(done)} datasets scored" +
            (f"; no evaluation case in {', '.join(skipped)} (training only)" if skipped else ""))


def step_volumes(config: ProtocolConfig, description: Description) -> str:
    """Volume agreement of each method on the 3D lesion datasets (key-slice prompts)."""
    from ..evaluation.results import read_results
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
            pred, ref = volume_pairs([r for r in rows if r.method == method])
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


def step_report(config: ProtocolConfig, description: Description) -> str:
    from .page import write_page

    return write_page(config, description)


STEP_FUNCTIONS: dict[str, Callable[[ProtocolConfig, Description], str]] = {
    "prepare": step_prepare, "finetune": step_finetune, "unet": step_unet, "predict": step_predict,
    "volumes": step_volumes, "raters": step_raters, "report": step_report,
}


def run_protocol(config: ProtocolConfig, redo: bool = False,
                 log: Callable[[str], None] | None = None) -> Path:
    """Run the selected steps in order (see the module docstring); returns ``index.html``.
    ``log`` receives one line per step (start, and its note with its time when done)."""
    description = load_protocol_description(config)
    config.out.mkdir(parents=True, exist_ok=True)
    record = read_steps(config.out)
    say = log or (lambda line: None)
    for step in STEPS:
        if step not in config.steps or (step in record and not redo and step != "report"):
            continue
        say(f"{step}: running")
        start = time.perf_counter()
        note = STEP_FUNCTIONS[step](config, description)
        seconds = time.perf_counter() - start
        record = {**read_steps(config.out), step: {"seconds": round(seconds, 1), "note": note,
                                                    "finished": time.strftime("%Y-%m-%d %H:%M:%S")}}
        _write_json(config.out / STEPS_FILE, record)
        say(f"{step}: {note} ({seconds / 60:.1f} min)")
    return config.out / "index.html"
