"""Settings of the paper's evaluation protocol (``medsam reproduce``), the steps it runs
and the image categories its U-Net specialists are trained for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..datasets.description import Description
from ..errors import InputError
from ..evaluation.accuracy import BOX_SETTINGS
from ..intensity import RGB_MODALITIES
from ..metrics.case import check_diagonal_pct

#: the steps, in the order they run
STEPS = ("prepare", "finetune", "unet", "predict", "volumes", "raters", "report")

#: method names in the report
PUBLISHED = "LiteMedSAM"
FINETUNED = "LiteMedSAM fine-tuned"
UNET = "U-Net"
SAM = "SAM"


def category(modality: str) -> str:
    """The paper's image category of a (canonical) modality, one U-Net each: ``CT``,
    ``MR``, ``RGB`` (endoscopy, dermoscopy, fundus, pathology, microscopy photos) or
    ``grey`` (X-ray, ultrasound, mammography and the other grey 2D modalities)."""
    if modality == "ct":
        return "CT"
    if modality == "mr":
        return "MR"
    return "RGB" if modality in RGB_MODALITIES else "grey"


@dataclass(frozen=True)
class ProtocolConfig:
    """One run of the protocol.

    Args:
        description: the dataset description file (see :mod:`medsam.datasets.description`);
            datasets marked ``external`` are never trained on.
        out: the results folder (created; an existing one is resumed).
        data_root: overrides the description's ``root`` folder.
        finetune_minutes: time budget of the LiteMedSAM fine-tune (mask decoder, on
            cached image embeddings).
        unet_minutes: time budget of each category's U-Net.
        steps: which of :data:`STEPS` to run (a later step needs the earlier ones' output).
        settings: box settings of :data:`~medsam.evaluation.accuracy.BOX_SETTINGS`.
        max_cases: the first N evaluation cases of each dataset only (quick runs; training
            and the raters' comparison use all, or the first N, cases).
        sam_weights: the SAM baseline's registered weights (run when cached) or checkpoint
            file (run when it exists).
        published: weights of the published model (the package default).
        device: where to train and predict.
        seed: split, sampling and box-perturbation seed is the description's; this one
            seeds training.
        tolerance: NSD tolerance in mm (in pixels for images without a pixel size).
        nsd_diagonal: images without a pixel size get an NSD tolerance of this
            percentage of their diagonal instead (None, the default: ``tolerance`` pixels).
        progress: progress bars on stderr.
    """

    description: Path
    out: Path
    data_root: Path | None = None
    finetune_minutes: float = 30.0
    unet_minutes: float = 5.0
    steps: tuple[str, ...] = STEPS
    settings: tuple[str, ...] = tuple(BOX_SETTINGS)
    max_cases: int | None = None
    sam_weights: str = "sam_vit_b"
    published: str = "lite_medsam"
    device: str = "auto"
    seed: int = 0
    tolerance: float = 2.0
    nsd_diagonal: float | None = None
    finetune_batch: int = 8
    unet_batch: int = 16
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = [s for s in self.steps if s not in STEPS]
        if unknown:
            raise InputError(f"unknown protocol steps {unknown}; choose from {', '.join(STEPS)}")
        bad = [s for s in self.settings if s not in BOX_SETTINGS]
        if bad or not self.settings:
            raise InputError(f"unknown box settings {bad}; choose from {', '.join(BOX_SETTINGS)}")
        if self.finetune_minutes <= 0 or self.unet_minutes <= 0:
            raise InputError("training budgets must be positive minutes")
        try:
            check_diagonal_pct(self.nsd_diagonal)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if self.max_cases is not None and self.max_cases < 1:
            raise InputError(f"max_cases must be at least 1, got {self.max_cases}")


def load_protocol_description(config: ProtocolConfig) -> Description:
    """The description, with its root replaced by ``config.data_root`` when given."""
    from ..datasets.description import load_description, parse_description, read_structured_file
    from ..fileutil import existing_folder

    if config.data_root is None:
        return load_description(config.description)
    data = read_structured_file(config.description)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "root"}
    existing_folder(config.data_root, "data folder")
    return parse_description(data, Path(config.data_root), source=Path(config.description))


def training_estimate(config: ProtocolConfig, description: Description) -> str:
    """What the selected training steps will take: their budgets (the fine-tune, and one
    U-Net per image category of the datasets that are not external), in one line."""
    categories = sorted({category(spec.modality) for spec in description.datasets if not spec.external})
    parts = []
    if "finetune" in config.steps:
        parts.append(f"fine-tune {config.finetune_minutes:g} min")
    if "unet" in config.steps and categories:
        parts.append(f"{len(categories)} U-Nets ({', '.join(categories)}) x {config.unet_minutes:g} min")
    total = (config.finetune_minutes if "finetune" in config.steps else 0) + \
        (len(categories) * config.unet_minutes if "unet" in config.steps else 0)
    if not parts:
        return "no training in the selected steps"
    return f"about {total:g} min of training budgets ({' + '.join(parts)}), plus prediction and scoring"

