"""Segmentation metrics: DSC, NSD, HD95, volumes, per label and per case.

Pure functions on numpy masks plus :class:`MetricAccumulator`. Spacing is
always passed explicitly in array axis order, mm: (z, y, x) or (y, x).
"""

from .case import CaseMetrics, MetricAccumulator, MetricSummary, evaluate_labels, present_labels, summarize_values
from .overlap import dice, voxel_volume_mm
from .surface import (
    SurfaceDistances,
    average_surface_distance,
    hausdorff_distance,
    normalized_surface_distance,
    surface_distances,
)
from .volumes import LabelVolume, label_volumes, volume_unit

__all__ = [
    "CaseMetrics",
    "LabelVolume",
    "label_volumes",
    "volume_unit",
    "MetricAccumulator",
    "MetricSummary",
    "summarize_values",
    "SurfaceDistances",
    "average_surface_distance",
    "dice",
    "evaluate_labels",
    "hausdorff_distance",
    "normalized_surface_distance",
    "present_labels",
    "surface_distances",
    "voxel_volume_mm",
]
