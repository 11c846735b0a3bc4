"""Dataset descriptions and their cases: the layer below evaluation, training and the
protocol.

* :mod:`.description`: the description file (:class:`DatasetSpec`, :class:`Description`,
  :func:`load_description`) and the one case-pattern rule (:func:`case_id`);
* :mod:`.cases`: the cases a dataset holds (:func:`find_dataset_cases`) and how one is read.

Heavy modules are imported where they are used; importing this package is cheap.
"""

from .description import DatasetSpec, Description, Intensity, case_id, load_description, parse_description

__all__ = ["DatasetSpec", "Description", "Intensity", "case_id", "load_description", "parse_description"]
