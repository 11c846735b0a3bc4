"""The CVPR 2025 interactive challenge's npz files, written exactly as its evaluation script
writes them (np.savez_compressed of lists of dicts holding numpy integers), read without
running code."""

import os

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.io import read_npz
from medsam.io.npz import ChallengeBox
from medsam.segmentation.prompt_files import prompts_from_interaction


def _box(z_min=2, z_max=6, z_mid=4, x0=10, y0=12, x1=30, y1=28):
    return {"z_min": np.int64(z_min), "z_max": np.int64(z_max), "z_mid": np.int64(z_mid),
            "z_mid_x_min": np.int64(x0), "z_mid_y_min": np.int64(y0),
            "z_mid_x_max": np.int64(x1), "z_mid_y_max": np.int64(y1)}


def _write(path, **over):
    imgs = np.zeros((8, 40, 50), np.uint8)
    arrays = dict(imgs=imgs, spacing=np.array([1.0, 1.0, 3.0]), boxes=[_box(), _box(1, 7, 3)])
    arrays.update(over)
    np.savez_compressed(path, **arrays)
    return path


def test_box_step_file_reads_as_boxes_with_slice_ranges(tmp_path):
    case = read_npz(_write(tmp_path / "case.npz"))
    assert case.interaction.boxes == (ChallengeBox(2, 6, 4, 10, 12, 30, 28), ChallengeBox(1, 7, 3, 10, 12, 30, 28))
    assert case.interaction.clicks == ((), ()) and case.interaction.prev_pred is None
    assert case.boxes is None and case.image.shape == (8, 40, 50)
    prompts = prompts_from_interaction(case.interaction)
    assert [(p.label, p.slice, p.z_range, p.box) for p in prompts] == [
        (1, 4, (2, 6), (10.0, 12.0, 30.0, 28.0)), (2, 3, (1, 7), (10.0, 12.0, 30.0, 28.0))]


def test_click_step_file_keeps_the_click_order(tmp_path):
    # as the evaluation script builds them: list(center) of np.argwhere indices (z, y, x)
    clicks = [{"fg": [[np.int64(4), np.int64(20), np.int64(15)]], "bg": [[np.int64(5), np.int64(13), np.int64(11)]]},
              {"fg": [], "bg": [[np.int64(2), np.int64(30), np.int64(40)], [np.int64(3), np.int64(31), np.int64(41)]]}]
    order = [["bg", "fg"], ["bg", "bg"]]
    prev = np.zeros((8, 40, 50), np.uint8)
    case = read_npz(_write(tmp_path / "case.npz", clicks=clicks, clicks_order=order, prev_pred=prev))
    assert case.interaction.clicks == ((((5, 13, 11), False), ((4, 20, 15), True)),
                                       (((2, 30, 40), False), ((3, 31, 41), False)))
    assert case.interaction.prev_pred.shape == (8, 40, 50)
    p1, p2 = prompts_from_interaction(case.interaction)
    assert p1.points == ((11.0, 13.0, 5.0), (15.0, 20.0, 4.0)) and p1.point_labels == (0, 1)
    assert p2.point_labels == (0, 0)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "evil.npz", clicks=[{"fg": [], "bg": [], "x": _Payload()}], clicks_order=[[]])
    with pytest.raises(InputError, match=r"evil.npz: 'clicks': refused to load (posix|os)\.system"):
        read_npz(path)
    assert not (tmp_path / "PWNED").exists()
    np.savez(tmp_path / "evil2.npz", imgs=np.array([_Payload()], dtype=object))
    with pytest.raises(InputError, match="refused to load"):
        read_npz(tmp_path / "evil2.npz")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("over, message", [
    (dict(clicks=[{"fg": [[9, 1, 1]], "bg": []}, {"fg": [], "bg": [[1, 1, 1]]}], clicks_order=[["fg"], ["bg"]]),
     r"class 1: fg click \[z, y, x\] = \[9, 1, 1\] lies outside the volume \(8, 40, 50\)"),
    (dict(boxes=[_box(z_min=5, z_max=6, z_mid=4)]),
     "class 1: the box.s slice range 5..6 does not contain its key slice"),
    (dict(clicks=[{"fg": [], "bg": []}, {"fg": [], "bg": []}], clicks_order=[[], []],
          prev_pred=np.zeros((8, 40, 49), np.uint8)), r"'prev_pred' has shape \(8, 40, 49\)"),
    (dict(clicks=[{"fg": [], "bg": []}] * 3, clicks_order=[[], [], []]), "class 3: has clicks but no box"),
    (dict(clicks=[{"fg": [[1, 2]], "bg": []}, {"fg": [], "bg": [[1, 1, 1]]}], clicks_order=[["fg"], ["bg"]]),
     r"class 1: 'fg' clicks must be a list of \[z, y, x\]"),
    (dict(clicks=[{"fg": [[1, 2, 3]], "bg": []}, {"fg": [], "bg": [[1, 1, 1]]}], clicks_order=[["bg"], ["bg"]]),
     "class 1: 'clicks_order' must list"),
    (dict(boxes=[{"z_min": 1}]), "class 1: a box must be a dict of whole numbers"),
])
def test_bad_interactive_files_name_the_file_the_class_and_the_problem(tmp_path, over, message):
    path = _write(tmp_path / "bad.npz", **over)
    with pytest.raises(InputError, match=message) as info:
        read_npz(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
