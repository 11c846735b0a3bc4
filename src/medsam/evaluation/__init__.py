"""Evaluation as in the MedSAM paper, on top of :mod:`medsam.metrics`.

* :mod:`.runner`: score a folder of predictions against references
  (``medsam evaluate``);
* :mod:`.results`: the result CSV (one row per task, method, case, label);
* :mod:`.summary`: median (IQR), mean, n per task and label;
* :mod:`.stats` and :mod:`.compare`: Wilcoxon signed-rank tests with Holm or
  Benjamini-Hochberg correction (``medsam compare``);
* :mod:`.volumes`: tumour volumes and their agreement (``medsam volume``);
* :mod:`.experts`: majority vote and leave-one-out comparison with raters;
* :mod:`.plots` and :mod:`.report`: PNG plots and a report folder
  (``medsam report``).

Submodules are imported on use; this package imports nothing heavy.
"""
