"""Medical image I/O with geometry.

``read(path) -> (array, Geometry)`` and ``write(array, path, geometry)`` for NIfTI,
NRRD, MHA/MHD, DICOM series (folders), PNG/JPEG/BMP/TIFF/GIF and the CVPR 2024
"MedSAM on Laptop" npz format.

Array convention for the whole package: 3D volumes ``(z, y, x)``, 2D images ``(y, x)``
or ``(y, x, 3)``; ``Geometry.spacing`` in the same array axis order (mm);
``Geometry.origin`` / ``Geometry.direction`` in ITK/LPS world terms.
"""

from .bounds import ReadLimits, TooLargeError, read_limits
from .dispatch import extension, is_supported, read, supported_extensions, write, write_labels
from .geometry import Geometry
from .npz import NpzCase, read_npz, write_npz
from .overlay import overlay_montage_rgb, overlay_rgb, write_overlay_montage, write_overlay_png
from .resample import resample
from .segments import LABEL_COLOURS, TISSUE, Code, Segment, label_colour, read_segments, segments_of
from .values import as_label_map
from .volume import DicomSeries, list_dicom_series, read_dicom_series

__all__ = [
    "Geometry", "read", "write", "write_labels", "as_label_map", "supported_extensions",
    "extension", "is_supported", "NpzCase", "read_npz", "write_npz", "overlay_rgb",
    "overlay_montage_rgb", "write_overlay_montage",
    "write_overlay_png", "resample", "DicomSeries", "list_dicom_series", "read_dicom_series",
    "ReadLimits", "TooLargeError", "read_limits",
    "Segment", "Code", "TISSUE", "LABEL_COLOURS", "segments_of", "read_segments", "label_colour",
]
