"""The quality signal: the model's predicted IoU per object, and a warning where a result is
probably wrong (the stomach box of issue 34 that segments another structure)."""

import numpy as np

from medsam.segmentation.quality import LOW_IOU, object_quality

CT = "totalseg/example_ct_sm.nii.gz"
STOMACH_BOX = "33,45,0,66,81,29"     # tight on the stomach; the model takes another structure
KIDNEY_BOX = "70,29,0,92,51,18"


def test_predicted_iou_is_the_area_weighted_mean_over_the_objects_slices():
    mask = np.zeros((5, 10, 10), bool)
    mask[1, :2, :2] = True            # 4 pixels
    mask[2, :4, :4] = True            # 16 pixels
    q = object_quality(3, mask, {1: 0.5, 2: 1.0, 4: 0.1}, key_slice=2, z_range=(0, 4))
    assert q.predicted_iou == (0.5 * 4 + 1.0 * 16) / 20 and q.key_iou == 1.0
    assert q.slices == 2 and not q.warnings and q.as_dict()["label"] == 3


def test_each_warning_fires_on_its_own():
    volume = np.zeros((6, 8, 8), bool)
    assert object_quality(1, volume, {}).warnings == ("the mask is empty",)
    one = volume.copy()
    one[3, 2:5, 2:5] = True
    (only,) = object_quality(1, one, {3: 0.95}, key_slice=3, z_range=(0, 5)).warnings
    assert "covers its key slice 3 only, although slices 0..5" in only
    assert not object_quality(1, one, {3: 0.95}, key_slice=3, z_range=(3, 3)).warnings
    through = np.ones((6, 8, 8), bool)
    (spill,) = object_quality(1, through, dict.fromkeys(range(6), 0.95), key_slice=2, range_given=False).warnings
    assert "every slice of the volume" in spill
    assert not object_quality(1, through, dict.fromkeys(range(6), 0.95), key_slice=2, z_range=(0, 5)).warnings
    (low,) = object_quality(1, one[3], {0: LOW_IOU - 0.01}).warnings
    assert "predicted IoU is low" in low
    assert object_quality(1, one[3], {}).predicted_iou is None   # a segmenter without a score


def test_the_stomach_box_that_misses_is_flagged_and_a_kidney_box_is_not(cli, shared_data, tmp_path):
    wrong = cli("segment", shared_data / CT, "--box", STOMACH_BOX, "--modality", "ct", "--window", "abdomen",
                "-o", tmp_path / "stomach.nii.gz")
    assert wrong.returncode == 0, wrong.stderr
    assert "predicted IoU 0.6" in wrong.stdout
    assert "medsam: warning: example_ct_sm: label 1: probably wrong: the model's predicted IoU is low" in wrong.stderr
    right = cli("segment", shared_data / CT, "--box", KIDNEY_BOX, "--modality", "ct", "--window", "abdomen",
                "-o", tmp_path / "kidney.nii.gz")
    assert right.returncode == 0, right.stderr
    assert "predicted IoU 0.8" in right.stdout and "warning" not in right.stderr
