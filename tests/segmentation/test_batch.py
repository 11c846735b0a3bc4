"""Batch segmentation in the library (what ``medsam segment`` calls): one file, odd image
shapes, and a folder with a broken case, with the real LiteMedSAM on real radiographs."""

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from medsam import io
from medsam.errors import InputError
from medsam.metrics import dice
from medsam.segmentation import BoxPrompt, make_segmenter, mask_to_box
from medsam.segmentation.batch import OBJECTS_NAME, TIMES_NAME, CaseOptions, segment_file, segment_folder

JSRT = "jsrt_scr_cxr"


@pytest.fixture(scope="module")
def segmenter(lite_medsam_model, embedding_store):
    return make_segmenter(lite_medsam_model, precision="exact", store=embedding_store)


def heart_box(shared_data, case):
    heart, _ = io.read(shared_data / JSRT / "masks_heart" / f"{case}.png")
    return BoxPrompt(tuple(float(v) for v in mask_to_box(heart > 0)), label=1, name="heart"), heart > 0


def test_one_file_is_segmented_into_its_output(segmenter, shared_data, tmp_path):
    prompt, heart = heart_box(shared_data, "JPCLN001")
    result = segment_file(shared_data / JSRT / "images/JPCLN001.png", segmenter, tmp_path / "heart.png",
                          CaseOptions(overlay=True), boxes=[prompt])
    assert result.ok and result.case == "JPCLN001" and result.output == tmp_path / "heart.png"
    labels, _ = io.read(result.output)
    assert labels.shape == heart.shape and set(np.unique(labels)) == {0, 1}
    assert dice(labels == 1, heart) > 0.75   # the published weights find the heart (0.79 on this case)
    assert result.volumes[0].voxels == int((labels == 1).sum()) and result.names == {1: "heart"}
    assert result.overlay is not None and result.overlay.is_file()
    with pytest.raises(InputError, match="heart.png: output exists; pass overwrite=True"):   # never replaced unasked
        segment_file(shared_data / JSRT / "images/JPCLN001.png", segmenter, tmp_path / "heart.png",
                     boxes=[prompt])


def test_a_volume_written_as_seg_nrrd_carries_the_prompts_names(segmenter, shared_data, tmp_path):
    boxes = [BoxPrompt((70, 29, 0, 92, 51, 18), label=1, name="kidney right"), BoxPrompt((26, 30, 5, 50, 52, 14),
                                                                                         label=3)]
    result = segment_file(shared_data / "totalseg/example_ct_sm.nii.gz", segmenter, tmp_path / "ct.seg.nrrd",
                          CaseOptions(modality="ct"), boxes=boxes)
    assert io.read_segments(result.output) == [io.Segment(1, "kidney right", io.label_colour(1)),
                                               io.Segment(3, "label 3", io.label_colour(3))]


@pytest.mark.parametrize("shape,box", [((1, 1), (0, 0, 1, 1)), ((3, 7), (0, 0, 3, 2)),
                                       ((1, 5000), (0, 0, 4000, 1)), ((5000, 2), (0, 0, 2, 4000))])
def test_tiny_and_extreme_images_segment(segmenter, tmp_path, shape, box):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray(np.full(shape, 200, np.uint8)).save(path)
    result = segment_file(path, segmenter, tmp_path / "s.png", boxes=[BoxPrompt(box)])
    assert result.ok and io.read(tmp_path / "s.png")[0].shape == shape


def test_a_folder_goes_on_past_a_broken_case(segmenter, shared_data, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for case in ("JPCLN001", "JPCLN002"):
        shutil.copy(shared_data / JSRT / f"images/{case}.png", cases)
    (cases / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    seen, failures = [], []
    done = segment_folder(cases, lambda device: segmenter, tmp_path / "segs", boxes=[BoxPrompt((100, 80, 200, 200))],
                          device="cpu", on_case=seen.append, on_failures=failures.extend)
    assert [c.case for c in done.cases] == ["JPCLN001", "JPCLN002", "broken"] == [c.case for c in seen]
    assert [c.case for c in done.failed] == ["broken"] == [c.case for c in failures]
    assert str(cases / "broken.png") in str(done.failed[0].error)
    assert sorted(p.name for p in done.output_dir.iterdir()) == ["JPCLN001.png", "JPCLN002.png", OBJECTS_NAME,
                                                                   TIMES_NAME]
    with open(done.times, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["case"], r["status"]) for r in rows] == [("JPCLN001", "ok"), ("JPCLN002", "ok"), ("broken", "failed")]
    assert rows[2]["error"] and all(float(r["seconds"]) > 0 for r in rows)
    with pytest.raises(InputError, match=TIMES_NAME):     # a second run does not replace them unasked
        segment_folder(cases, lambda device: segmenter, tmp_path / "segs", boxes=[BoxPrompt((100, 80, 200, 200))])


@pytest.mark.parametrize("margin", [-1.0, float("nan")])
def test_a_negative_or_missing_margin_is_refused(margin):
    with pytest.raises(InputError, match="margin must be a number >= 0") as error:
        CaseOptions(margin=margin)
    assert error.value.option == "margin"


MR = "monai_testing/anatomical.nii"


@pytest.mark.parametrize("name,box,slice_,modality,message", [
    ("missing.nii.gz", "1,1,5,5", None, None, "missing.nii.gz"),
    ("notes.txt", "1,1,5,5", None, None, "unsupported file type"),
    ("bad.nii.gz", "1,1,5,5", 0, None, "bad.nii.gz"),
    ("empty_dir", "1,1,5,5", None, None, "no images to segment"),
    (JSRT + "/images/JPCLN001.png", "0,0,2000,50", None, None, "outside the image"),
    (JSRT + "/images/JPCLN001.png", "10,10,10,50", None, None, "zero"),
    (MR, "1,1,5,5", 25, "mr", "slice 25 is out of range"),
    (MR, "1,1,5,5", None, "mr", "needs a slice"),
    (JSRT + "/images/JPCLN001.png", None, None, None, "not valid JSON"),
    (MR, "1,1,0,5,5,2", None, None, "modality"),
    (MR, "1,1,0,5,5,2", None, "xyz", "xyz"),
    ("sixteen.png", "1,1,5,5", None, None, r"sixteen\.png: image values are uint16 in 0\.\.60000; "),
])
def test_bad_input_is_refused_before_any_work(shared_data, tmp_path, name, box, slice_, modality, message):
    """Every problem of a case is found by prepare_case (plan_folder for a folder) before a
    model is loaded, and nothing is written."""
    from medsam.segmentation import load_prompts, parse_box_text
    from medsam.segmentation.batch import plan_folder, prepare_case

    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.nii.gz").write_bytes(b"\x1f\x8b garbage")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "bad.json").write_text("{oops")
    Image.fromarray(np.linspace(0, 60000, 64 * 64).astype(np.uint16).reshape(64, 64)).save(tmp_path / "sixteen.png")
    path = (tmp_path if not name.startswith((JSRT, "monai")) else shared_data) / name
    out = tmp_path / "out" / "mask.nii.gz"
    with pytest.raises(InputError, match=message):
        if path.is_dir():
            plan_folder(path, tmp_path / "out")
        else:
            prompts = load_prompts(tmp_path / "bad.json") if box is None else None
            boxes = [BoxPrompt(parse_box_text(box), slice=slice_)] if box else []
            prepare_case(path, out, CaseOptions(modality=modality), prompts, boxes)
    assert not (tmp_path / "out").exists()
