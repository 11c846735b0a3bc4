import json

import numpy as np
import pytest

from medsam.errors import InputError
from medsam.io import Geometry
from medsam.segmentation.prompt_files import load_prompts, parse_box_text, prompts_from_npz_boxes, read_prompts_file
from medsam.segmentation.prompts import BoxPrompt, Click, resolve_prompt


def test_read_prompts_file(tmp_path):
    p = tmp_path / "prompts.json"
    p.write_text(json.dumps({"prompts": [
        {"box": [1, 2, 30, 40], "slice": 3, "name": "liver"},
        {"box": [1, 2, 0, 30, 40, 5], "label": 7},
        {"box": [-10.5, 3, 0, 5, 9, 12], "world": True, "frame": "ras"},
    ]}))
    a, b, c = read_prompts_file(p)
    assert a == BoxPrompt((1, 2, 30, 40), label=1, name="liver", slice=3)
    assert b.label == 7 and len(b.box) == 6
    assert c.label == 3 and c.world and c.frame == "RAS"
    p.write_text(json.dumps([{"box": [0, 0, 5, 5]}]))     # a bare list works too
    assert read_prompts_file(p)[0].label == 1


@pytest.mark.parametrize("content,message", [
    ("{not json", r"not valid JSON \(line 1"),
    ("[]", "no prompts"),
    ('{"boxes": []}', "expected a list"),
    ('[{"box": [1, 2, 3]}]', r"prompt 1: \"box\" must be a list of 4 or 6"),
    ('[{"box": [0, 0, 5, 5]}, {"box": [1, 2, 3, 4], "label": 0}]', r"prompt 2: \"label\""),
    ('[{"box": [0, 0, 5, 5], "slcie": 3}]', "unknown key"),
    ('[{"box": [0, 0, 5, 5], "slice": 1.5}]', "slice"),
    ('[{"box": [0, 0, 5, 5], "world": "yes"}]', "world"),
    ('[{"box": [0, 0, 5, 5], "frame": "XYZ"}]', "frame"),
    ('[{"box": [0, 0, "a", 5]}]', "box"),
    ('[3]', "expected an object"),
    ('[{"box": [0, 0, 5, 5], "points": [[1, 2]]}]', "point_labels"),
    ('[{"box": [0, 0, 5, 5], "points": [[1, 2]], "point_labels": [2]}]', "point_labels"),
    ('[{"box": [0, 0, 5, 5], "points": [1, 2], "point_labels": [1]}]', r"\[x, y\] or \[x, y, z\] pixel"),
    ('[{"box": [0, 0, 5, 5], "points": [[1, true]], "point_labels": [1]}]', "pixel coordinates"),
    ('[{"box": [0, 0, 5, 5], "slice": 2, "z_range": [1]}]', r"\"z_range\" must be \[first, last\]"),
    ('[{"box": [0, 0, 5, 5], "z_range": [1, 3]}]', r"\"z_range\" goes with a 4-number box and its \"slice\""),
    ('[{"box": [0, 0, 0, 5, 5, 5], "world": true, "points": [[1, 2]], "point_labels": [1]}]',
     "cannot refine a world box"),
])
def test_bad_prompts_files(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_prompts_file(p)
    assert str(p) in str(err.value)


def test_missing_prompts_file(tmp_path):
    with pytest.raises(InputError, match="prompts file not found"):
        read_prompts_file(tmp_path / "nope.json")


def test_parse_box_text():
    assert parse_box_text("1,2,3,4") == (1, 2, 3, 4)
    assert parse_box_text("1 2 3 4 5 6") == (1, 2, 3, 4, 5, 6)
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,inf"):
        with pytest.raises(InputError, match="box"):
            parse_box_text(bad)


def test_resolve_prompt():
    g3, shape3 = Geometry((2.0, 1.0, 1.0)), (10, 40, 50)
    r = resolve_prompt(BoxPrompt((5, 6, 2, 20, 30, 7), label=4), shape3, g3)
    assert r.box2d == (5, 6, 20, 30) and r.key_slice == 4 and r.z_range == (2, 7)
    r = resolve_prompt(BoxPrompt((5, 6, 20, 30), slice=9), shape3, g3)
    assert r.key_slice == 9 and r.z_range is None
    r = resolve_prompt(BoxPrompt((5, 6, 2, 20, 30, 7), slice=3), shape3, g3)   # a key slice in a 3D box
    assert r.key_slice == 3 and r.z_range == (2, 7)
    r = resolve_prompt(BoxPrompt((5, 6, 20, 30), slice=3, z_range=(1, 8)), shape3, g3)
    assert r.box2d == (5, 6, 20, 30) and r.key_slice == 3 and r.z_range == (1, 8)
    r = resolve_prompt(BoxPrompt((5, 6, 4, 20, 30, 14), world=True), shape3, g3)
    assert r.box2d == (5, 6, 20, 30) and r.z_range == (2, 7)
    cases = [
        (BoxPrompt((5, 6, 20, 30)), "needs a slice"),
        (BoxPrompt((5, 6, 20, 30), slice=10), "out of range"),
        (BoxPrompt((5, 6, 0, 20, 30, 3), slice=4), r"slice range 0..3 does not contain its key slice 4"),
        (BoxPrompt((5, 6, 20, 30), slice=4, z_range=(5, 8)), r"slice range 5..8 does not contain its key slice 4"),
        (BoxPrompt((5, 6, 20, 30), slice=4, z_range=(2, 6), points=((7, 8, 7),), point_labels=(1,)),
         r"point \(7, 8, 7\): slice 7 is outside the object's slice range 2..6"),
        (BoxPrompt((5, 6, 20, 30), slice=4, points=((7, 8, 10),), point_labels=(0,)),
         r"point \(7, 8, 10\): slice 10 is outside the volume \(10 slices\)"),
        (BoxPrompt((5, 6, 0, 60, 30, 3), label=2, name="x"), r"label 2 \(x\) box .*outside"),
        (BoxPrompt((5, 6, 20, 30), world=True, slice=2), "6 numbers"),
    ]
    for prompt, message in cases:
        with pytest.raises(InputError, match=message):
            resolve_prompt(prompt, shape3, g3)
    g2 = Geometry.default(2)
    assert resolve_prompt(BoxPrompt((1, 1, 4, 4)), (5, 5, 3), g2).key_slice is None
    for prompt, message in [(BoxPrompt((1, 1, 0, 4, 4, 1)), "4 numbers"),
                            (BoxPrompt((1, 1, 4, 4), slice=0), "applies to volumes"),
                            (BoxPrompt((1, 1, 1, 4)), "zero")]:
        with pytest.raises(InputError, match=message):
            resolve_prompt(prompt, (5, 5), g2)


def test_box_prompt_checks_and_npz_boxes(shared_data):
    with pytest.raises(ValueError):
        BoxPrompt((1, 2, 3))
    with pytest.raises(ValueError):
        BoxPrompt((1, 2, 3, 4), label=0)
    boxes = np.load(shared_data / "medficientsam_mammo/2DBox_Mammography_demo.npz")["boxes"]
    prompts = prompts_from_npz_boxes(boxes)
    assert [p.label for p in prompts] == [1, 2, 3, 4] and prompts[0].box == (131, 1532, 475, 1895)


def test_prompts_per_case_json(tmp_path):
    from medsam.segmentation import load_prompts

    p = tmp_path / "cases.json"
    p.write_text(json.dumps({"cases": {
        "JPCLN001.png": [{"box": [1, 2, 30, 40], "name": "heart"}],
        "JPCLN002": [{"box": [0, 0, 5, 5], "label": 3}, {"box": [1, 1, 9, 9], "label": 4}],
    }}))
    prompts = load_prompts(p)
    assert prompts.shared is None and sorted(prompts.by_case) == ["JPCLN001", "JPCLN002"]
    assert prompts.for_case("JPCLN001") == [BoxPrompt((1, 2, 30, 40), label=1, name="heart")]
    assert [q.label for q in prompts.for_case("JPCLN002")] == [3, 4]
    assert prompts.unknown_cases(["JPCLN001"]) == ["JPCLN002"]
    with pytest.raises(InputError, match="no prompts for case 'JPCLN003'"):
        prompts.for_case("JPCLN003")
    with pytest.raises(InputError, match="holds prompts per case"):
        read_prompts_file(p)


def test_prompts_per_case_csv(tmp_path):
    from medsam.segmentation import load_prompts

    p = tmp_path / "boxes.csv"
    p.write_text("case,label,name,x0,y0,x1,y1,z0,z1,slice\n"
                 "a.png,,heart,1,2,30,40,,,\n"
                 "a.png,5,,3,4,10,12,,,\n"
                 "ct.nii.gz,2,kidney,70,29,92,51,0,18,\n"
                 "ct.nii.gz,3,,10,10,20,20,,,7\n")
    prompts = load_prompts(p)
    assert prompts.for_case("a") == [BoxPrompt((1, 2, 30, 40), label=1, name="heart"),
                                      BoxPrompt((3, 4, 10, 12), label=5)]
    kidney, other = prompts.for_case("ct")
    assert kidney == BoxPrompt((70, 29, 0, 92, 51, 18), label=2, name="kidney")
    assert other == BoxPrompt((10, 10, 20, 20), label=3, slice=7)


@pytest.mark.parametrize("content,message", [
    ("case,x0,y0,x1\n", "missing column\\(s\\) y1"),
    ("case,x0,y0,x1,y1,colour\n", "unknown column\\(s\\) colour"),
    ("case,x0,y0,x1,y1\n", "no prompts"),
    ("case,x0,y0,x1,y1\na,1,2,three,4\n", "line 2: x1 'three' is not a number"),
    ("case,x0,y0,x1,y1\n,1,2,3,4\n", "line 2: case, x0, y0, x1 and y1 are required"),
    ("case,x0,y0,x1,y1,z0\na,1,2,3,4,5\n", "line 2: give both z0 and z1"),
    ("case,x0,y0,x1,y1,label\na,1,2,3,4,1.5\n", "label '1.5' is not a whole number"),
    ("case,x0,y0,x1,y1,label\na,1,2,3,4,0\n", "\"label\" must be a whole number in 1..65535"),
])
def test_bad_csv_prompts(tmp_path, content, message):
    from medsam.segmentation import load_prompts

    p = tmp_path / "boxes.csv"
    p.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_prompts(p)
    assert str(p) in str(info.value)


def test_bad_cases_json(tmp_path):
    from medsam.segmentation import load_prompts

    p = tmp_path / "cases.json"
    p.write_text(json.dumps({"cases": {"a.png": [{"box": [0, 0, 5, 5]}],
                                       "a.jpg": [{"box": [0, 0, 5, 5]}]}}))
    with pytest.raises(InputError, match="case 'a' is listed twice"):
        load_prompts(p)
    p.write_text(json.dumps({"cases": {"a": [{"box": [0, 0, 5]}]}}))
    with pytest.raises(InputError, match="case 'a'.*prompt 1"):
        load_prompts(p)


def test_points_round_trip_and_resolve(tmp_path):
    prompts = [BoxPrompt((10, 20, 30.5, 40), label=3, name="liver", slice=4, points=((12, 22), (15.5, 30)),
                         point_labels=(1, 0)),
               BoxPrompt((1, 2, 0, 8, 9, 3), label=1)]
    p = tmp_path / "prompts.json"
    p.write_text(json.dumps({"prompts": [q.to_json() for q in prompts]}))
    assert read_prompts_file(p) == prompts
    assert prompts[0].to_json() == {"box": [10, 20, 30.5, 40], "label": 3, "name": "liver", "slice": 4,
                                    "points": [[12, 22], [15.5, 30]], "point_labels": [1, 0]}
    g = Geometry((1.0, 1.0, 1.0))
    r = resolve_prompt(prompts[0], (8, 50, 60), g)
    # 2-value points on a volume lie on the key slice; 3-value ones anywhere
    assert r.key_slice == 4 and r.clicks == (Click(12.0, 22.0, 4, True), Click(15.5, 30.0, 4, False))
    # the resolved prompt goes back to a prompt that resolves to it
    assert resolve_prompt(r.to_box_prompt(), (8, 50, 60), g) == r
    anywhere = BoxPrompt((10, 20, 30, 40), slice=4, z_range=(1, 7), points=((12, 22, 7),), point_labels=(0,))
    assert read_prompts_file(_write_json(tmp_path, [anywhere.to_json()])) == [anywhere]
    assert anywhere.to_json()["z_range"] == [1, 7] and anywhere.to_json()["points"] == [[12, 22, 7]]
    assert resolve_prompt(anywhere, (8, 50, 60), g).clicks == (Click(12.0, 22.0, 7, False),)
    outside = BoxPrompt((10, 20, 30, 40), label=3, name="liver", slice=4, points=((61, 22),), point_labels=(1,))
    with pytest.raises(InputError, match=r"label 3 \(liver\) point \(61, 22\): outside the image \(width 60"):
        resolve_prompt(outside, (8, 50, 60), g)
    with pytest.raises(ValueError, match="2 points but 1 point labels"):
        BoxPrompt((0, 0, 5, 5), points=((1, 1), (2, 2)), point_labels=(1,))


def _write_json(folder, items):
    path = folder / "p3.json"
    path.write_text(json.dumps(items))
    return path


def test_csv_key_slice_box_with_its_slice_range(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("case,x0,y0,x1,y1,z0,z1,slice\nct,1,2,10,12,3,9,5\nct,1,2,10,12,3,9,\n")
    a, b = load_prompts(path).for_case("ct")
    assert (a.box, a.slice, a.z_range) == ((1.0, 2.0, 10.0, 12.0), 5, (3, 9))
    assert (b.box, b.slice, b.z_range) == ((1.0, 2.0, 3.0, 10.0, 12.0, 9.0), None, None)
