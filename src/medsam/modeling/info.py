"""What a model is and where its weights came from: :class:`ModelInfo`.

Every model the package builds (:class:`~medsam.modeling.sam.Sam`,
:class:`~medsam.modeling.unet.BoxUNet`) holds one in ``model.info``, typed and frozen. Its
architecture (``variant``, ``image_size``) is set when the model is built; what the
weights add (the preprocessing they were trained with, what they were trained for, the
file) is set once, by :func:`medsam.load_model` (``dataclasses.replace``), and read by the
predictor, the segmenters, the command line and the exports. Nothing is guessed from a
name or from the module's shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ModelInfo:
    """One model's description.

    Attributes:
        variant: the registry name of its architecture (``vit_b``, ``lite``, ``unet``, ...).
        image_size: S, the side of its square input (1024 or 256).
        transform: the preprocessing its weights were trained with (a key of
            ``medsam.transforms.TRANSFORMS``); "" until the model is built by its kind.
        transform_source: in words, where that choice came from ("as requested",
            "recorded in the checkpoint", "registered weights lite_medsam", ...).
        interactive: trained for interaction (clicks as point prompts with the previous
            mask as the dense prompt; :mod:`medsam.training.interactive`), as the
            checkpoint records it; never guessed from a name.
        weights: the weights as asked for (a registered name or a path); "" for random
            weights.
        weights_file: the file that was read; None for random weights.
        checksum: the registered checksum of named weights (``"sha256:<hex>"`` or
            ``"md5:<hex>"``; checked when fetched, and on every load for files shipped in the
            package), else None.
        metadata: what our own checkpoints record (variant, transform, training data).
    """

    variant: str
    image_size: int
    transform: str = ""
    transform_source: str = "the variant's default"
    interactive: bool = False
    weights: str = ""
    weights_file: str | None = None
    checksum: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)



class DescribedModel:
    """What every model of the package has beside its layers: ``info``, and its
    ``variant`` and ``image_size`` read from it (mixed into ``Sam`` and ``BoxUNet``)."""

    info: ModelInfo

    @property
    def variant(self) -> str:
        """Registry name of the architecture ("vit_b", "vit_l", "vit_h", "lite", "unet")."""
        return self.info.variant

    @property
    def image_size(self) -> int:
        """S, the side of the model's square input (1024 or 256)."""
        return self.info.image_size
