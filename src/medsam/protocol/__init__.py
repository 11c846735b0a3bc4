"""The MedSAM paper's evaluation protocol as one run (``medsam reproduce``).

Data from a dataset description, split 80/10/10 by case with whole datasets held out
as external; LiteMedSAM as published, LiteMedSAM fine-tuned within a time budget,
one U-Net specialist per image category and SAM (when its weights are cached), all
prompted with the same boxes, tight and perturbed; DSC and NSD per case, Wilcoxon
tests against the published model with Holm correction per task, box plots, the gain
of fine-tuning on internal and external tasks, tumour-volume agreement and the
comparison with human raters, on one results page.

* :mod:`.config` - :class:`ProtocolConfig`, the steps and the image categories;
* :mod:`.layout` - the output folder, and reading what earlier steps left there;
* :mod:`.methods` - the compared methods' weights and segmenters (each model loaded once);
* :mod:`.predict` - every method on a dataset's evaluation cases, scored;
* :mod:`.page` - the results page;
* :mod:`.steps` - the steps and :func:`run_protocol` (resumable).
"""

from .config import STEPS, ProtocolConfig, category
from .steps import run_protocol

__all__ = ["STEPS", "ProtocolConfig", "category", "run_protocol"]
