"""A small real description of ``../shared/data`` for the protocol tests."""

import json

#: four datasets of four kinds: labelled 2D classes, two raters, an external set, 3D lesions
DATASETS = [
    {"name": "jsrt", "modality": "xray", "images": "jsrt_scr_cxr/images/*.png",
     "labels": "jsrt_scr_cxr/masks_labels/{stem}.png",
     "classes": {"1": "right_lung", "2": "left_lung", "3": "heart"}},
    {"name": "drive", "modality": "fundus", "images": "drive_fundus/test/images/*.tif",
     "case_pattern": "^(\\d+)_", "labels": "drive_fundus/test/1st_manual/{case}_manual1.gif",
     "label_threshold": 127, "classes": {"1": "vessels"},
     "raters": {"1st": "drive_fundus/test/1st_manual/{case}_manual1.gif",
                "2nd": "drive_fundus/test/2nd_manual/{case}_manual2.gif"}},
    {"name": "busi", "modality": "us", "images": "busi_breast_us/images/*.png",
     "labels": "busi_breast_us/masks/{stem}.png", "label_threshold": 127,
     "classes": {"1": "lesion"}, "external": True},
    {"name": "recist", "modality": "ct", "intensity": "none", "images": "medsam2_recist/*.npz",
     "classes": {"1": "lesion"}, "min_pixels": 10, "min_voxels": 100, "prompt": "key_slice",
     "external": True},
]


def small_description(folder, shared_data):
    """The description file of :data:`DATASETS` in ``folder``."""
    path = folder / "protocol.json"
    path.write_text(json.dumps({"root": str(shared_data), "seed": 0, "datasets": DATASETS}))
    return path
