import json
import os

from test_data_fixtures import voc_object, write_coco, write_image, write_voc

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data.check import check_dataset
from nnabla_nas_detofa.data.synthetic import make_synthetic_voc


def test_clean_synthetic_data_passes(tmp_path, capsys):
    root = str(tmp_path)
    make_synthetic_voc(root, 6, 2, 48, seed=2)
    assert main_tools(["check-data", f"voc:{root}"]) == 0
    out = capsys.readouterr().out
    assert "images: 8 (empty: 0)" in out and "problems: 0" in out
    assert "splits: synth_train, synth_trainval, synth_val" in out
    assert main_tools(["check-data", f"voc:{root}", "--split", "synth_val", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["images"] == 2 and rep["ok"]
    assert set(rep["per_class"]) == {"circle", "square", "triangle", "cross", "ring"}


def test_voc_problems_are_listed_file_by_file(tmp_path, capsys):
    root = str(tmp_path)
    base = write_voc(root, "2007", {
        "ok": (20, 20, [voc_object("dog", (1, 1, 10, 10)), voc_object("cat", (2, 2, 5, 5), difficult="1")]),
        "empty": (20, 20, []),
        "degen": (20, 20, [voc_object("dog", (10, 1, 5, 10))]),
        "outside": (20, 20, [voc_object("dog", (1, 1, 30, 10))]),
        "nocoord": (20, 20, [voc_object("dog", (1, 1, None, 10))]),
        "unknown": (20, 20, [voc_object("dragon", (1, 1, 10, 10))]),
        "noimage": (20, 20, [voc_object("dog", (1, 1, 10, 10))], {"image": False}),
        "badxml": (20, 20, [], {"xml": "<annotation><size>"}),
        "garbage": (20, 20, [voc_object("dog", (1, 1, 10, 10))]),
        "wrongsize": (20, 20, [voc_object("dog", (1, 1, 10, 10))]),
    }, {"trainval": ["ok", "empty", "degen", "outside", "nocoord", "unknown", "noimage", "badxml", "garbage",
                     "wrongsize", "absent"]})
    with open(os.path.join(base, "JPEGImages", "garbage.jpg"), "wb") as f:
        f.write(b"\xff\xd8 definitely not a jpeg")
    write_image(os.path.join(base, "JPEGImages", "wrongsize.jpg"), 24, 20)
    assert main_tools(["check-data", f"voc:{root}", "--split", "2007_trainval"]) == 1
    out = capsys.readouterr().out
    expected = [
        ("degen.xml: object 1", "degenerate box"),
        ("outside.xml: object 1", "leaves the 20x20 image"),
        ("nocoord.xml: object 1 (dog)", "bndbox <xmax> is missing"),
        ("unknown.xml: object 1 (dragon)", "unknown class 'dragon'"),
        ("noimage.xml", "image file is missing"),
        ("badxml.xml", "malformed XML"),
        ("garbage.jpg", "cannot decode image"),
        ("wrongsize.jpg", "image is 24x20 but"),
        ("absent.xml", "annotation file is missing"),
    ]
    problem_lines = out.split("problems:")[1].splitlines()[1:]
    assert len(problem_lines) == len(expected)
    for (where, what), ln in zip(expected, problem_lines):       # file by file, in split order
        assert where in ln and what in ln, (where, what, ln)
    assert "images: 11 (empty: 1)" in out
    rep = check_dataset(f"voc:{root}", "2007_trainval", decode_images=False)
    # without decoding, image headers are still read: garbage.jpg and wrongsize.jpg are found too
    assert rep.difficult == 1 and rep.per_class["dog"] == 5 and len(rep.problems) == 9
    assert [str(p) for p in rep.problems] == [ln.strip() for ln in problem_lines]
    cls = tmp_path / "cls.txt"
    cls.write_text("dog\ncat\ndragon\n")
    assert main_tools(["check-data", f"voc:{root}", "--split", "2007_trainval", "--classes", str(cls)]) == 1
    assert "unknown class" not in capsys.readouterr().out


def test_coco_problems(tmp_path, capsys):
    root = str(tmp_path)
    path, data = write_coco(root, "val2017", [(1, "a.jpg", 32, 32), (2, "b.jpg", 32, 32), (3, "c.jpg", 32, 32)],
                            [(1, 1, [0, 0, 10, 10]), (1, 1, [5, 5, 0, 4]), (2, 2, [20, 20, 20, 5])],
                            [(1, "a"), (2, "b")])
    data["annotations"].append({"id": 99, "image_id": 3, "category_id": 7, "bbox": [0, 0, 1, 1]})
    with open(path, "w") as f:
        json.dump(data, f)
    os.remove(os.path.join(root, "val2017", "c.jpg"))
    assert main_tools(["check-data", f"coco:{root}"]) == 1
    out = capsys.readouterr().out
    assert "annotations[1] (image 1): degenerate box" in out
    assert "annotations[2] (image 2): box (x1=20, y1=20, x2=40, y2=25) leaves the 32x32 image" in out
    assert "annotations[3]: category_id 7 is not in 'categories'" in out
    assert "image 3: image file is missing" in out
    assert "images: 3 (empty: 0)" in out


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main_tools(["check-data", f"voc:{tmp_path}/nothing"]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert main_tools(["check-data", "foo:bar"]) == 2
    assert main_tools(["check-data", f"voc:{tmp_path}"]) == 2
    assert "no VOC split found" in capsys.readouterr().err
