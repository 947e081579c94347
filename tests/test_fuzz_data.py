"""Fuzz: malformed data sets and detection files through ``check-data``, ``evaluate`` and the readers.

``check-data`` must exit 1 and list the broken file (stdout), with one stderr line; the training
reader must raise one ``DataError`` naming the same file; ``evaluate`` must score from the
annotations alone or exit 2 with one line naming the file and the entry, and never fail inside
pycocotools. Nothing in the data folder may change.
"""
import json
import os

import pytest
from fuzz_cases import DEEP, HUGE, NAN, assert_one_line, byte_variants, call, snapshot
from test_data_fixtures import voc_object, voc_xml, write_coco, write_image, write_voc

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data import DataError, load_dataset


# --- VOC ------------------------------------------------------------------------------------------
def make_voc(root):
    return write_voc(root, "2007", {
        "a": (40, 30, [voc_object("dog", (2, 3, 20, 25)), voc_object("cat", (5, 5, 30, 28))]),
        "b": (32, 32, [voc_object("cat", (1, 1, 16, 16))]),
        "c": (24, 20, []),
    }, {"trainval": ["a", "b", "c"]})


def check(root, *extra):
    return call(main_tools, ["check-data", f"voc:{root}", "--split", "2007_trainval", "--workers", "1", *extra])


def problems_of(o):
    return o.out.split("problems:")[1].splitlines()[1:] if "problems:" in o.out else []


GOOD_OBJECT = voc_object("dog", (2, 3, 20, 25))
XML_FINDINGS = [   # (what, annotation text of a.xml, a word the problem line must hold)
    ("wrong root", voc_xml("a.jpg", 40, 30, [GOOD_OBJECT]).replace("annotation>", "annotations>"), "root element"),
    ("width abc", voc_xml("a.jpg", "abc", 30, [GOOD_OBJECT]), "<width>"),
    ("width -1", voc_xml("a.jpg", -1, 30, [GOOD_OBJECT]), "<width>"),
    ("width 1.5", voc_xml("a.jpg", 1.5, 30, [GOOD_OBJECT]), "<width>"),
    ("width nan", voc_xml("a.jpg", "nan", 30, [GOOD_OBJECT]), "<width>"),
    ("height inf", voc_xml("a.jpg", 40, "inf", [GOOD_OBJECT]), "<height>"),
    ("height 1e999", voc_xml("a.jpg", 40, "1e999", [GOOD_OBJECT]), "<height>"),
    ("size differs", voc_xml("a.jpg", 41, 30, [GOOD_OBJECT]), "image is 40x30"),   # (found by reading the image)
    ("no name", voc_xml("a.jpg", 40, 30, [GOOD_OBJECT.replace("<name>dog</name>", "")]), "<name> is missing"),
    ("no bndbox", voc_xml("a.jpg", 40, 30, ["<object><name>dog</name></object>"]), "<bndbox> is missing"),
    ("xmin x", voc_xml("a.jpg", 40, 30, [voc_object("dog", ("x", 3, 20, 25))]), "not a number"),
    ("xmin nan", voc_xml("a.jpg", 40, 30, [voc_object("dog", ("nan", 3, 20, 25))]), "not a finite number"),
    ("xmax missing", voc_xml("a.jpg", 40, 30, [voc_object("dog", (2, 3, None, 25))]), "<xmax> is missing"),
    ("xmax huge", voc_xml("a.jpg", 40, 30, [voc_object("dog", (2, 3, 1e300, 25))]), "not a finite number"),
    ("xmax far", voc_xml("a.jpg", 40, 30, [voc_object("dog", (2, 3, 1e5, 25))]), "leaves the 40x30 image"),
    ("degenerate", voc_xml("a.jpg", 40, 30, [voc_object("dog", (20, 3, 2, 25))]), "degenerate box"),
    ("unknown class", voc_xml("a.jpg", 40, 30, [voc_object("wolf", (2, 3, 20, 25))]), "unknown class"),
    ("difficult maybe", voc_xml("a.jpg", 40, 30, [voc_object("dog", (2, 3, 20, 25), difficult="maybe")]),
     "<difficult>"),
    ("not utf-8", "<annotation>\udcff</annotation>", "malformed XML"),
    ("truncated", voc_xml("a.jpg", 40, 30, [GOOD_OBJECT])[:50], "malformed XML"),
    ("empty", "", "malformed XML"),
    ("external entity", '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                        '<annotation>&x;</annotation>', "malformed XML"),
    ("billion laughs", '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l0 "lol">'
     + "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
     + "]><annotation>&l9;</annotation>", "malformed XML"),
]


def test_voc_annotation_findings(tmp_path):
    root = str(tmp_path / "voc")
    base = make_voc(root)
    xml = os.path.join(base, "Annotations", "a.xml")
    data = snapshot(root)
    assert check(root).rc == 0
    for what, text, needle in XML_FINDINGS:
        with open(xml, "wb") as f:
            f.write(text.encode("utf-8", "surrogateescape"))
        o = check(root)
        assert_one_line(o, "problem(s) found", rc=1, what=what)
        found = problems_of(o)
        assert found and all("a.xml" in p or "a.jpg" in p for p in found), (what, found)
        assert any(needle in p for p in found), (what, needle, found)
        try:
            ds = load_dataset("voc", root, "2007_trainval")
            # the reader reads annotations only (images: the launcher's pre-flight check); a box
            # problem is clipped at loading and listed
            assert ds.problems or "image is" in needle, what
        except DataError as err:
            assert "a.xml" in str(err) or "a.jpg" in str(err), (what, err)
            assert "\n" not in str(err)
    with open(xml, "w") as f:
        f.write(voc_xml("a.jpg", 40, 30, [GOOD_OBJECT]))
    data.pop(os.path.join("VOC2007", "Annotations", "a.xml"))
    now = snapshot(root)
    now.pop(os.path.join("VOC2007", "Annotations", "a.xml"))
    assert now == data                                # check-data and the reader wrote nothing


def test_voc_annotation_byte_variants(tmp_path):
    root = str(tmp_path / "voc")
    base = make_voc(root)
    xml = os.path.join(base, "Annotations", "a.xml")
    good = open(xml, "rb").read()
    rcs = set()
    for what, raw in byte_variants(good, 60, seed=3):
        with open(xml, "wb") as f:
            f.write(raw)
        o = check(root, "--no-decode")
        assert o.rc in (0, 1) and len(o.lines) == (o.rc == 1), (what, o)
        assert all("a.xml" in p or "a.jpg" in p for p in problems_of(o)), (what, problems_of(o))
        rcs.add(o.rc)
    assert 1 in rcs


def test_image_sets_and_class_lists(tmp_path):
    root = str(tmp_path / "voc")
    base = make_voc(root)
    sets = os.path.join(base, "ImageSets", "Main")
    for name, raw, needle in (("bad", b"a\n\xff\xfe\n", "not UTF-8"), ("empty", b"", "lists no image"),
                              ("blank", b"\n \n\t\n", "lists no image"), ("path", b"a\n../../etc/passwd\n", "a path"),
                              ("dup", b"a\nb\na\n", "also listed"), ("cut", b"a\nb\nc"[:3], None)):
        with open(os.path.join(sets, name + ".txt"), "wb") as f:
            f.write(raw)
        o = call(main_tools, ["check-data", f"voc:{root}", "--split", f"2007_{name}"])
        if needle is None:     # "a\nb" cut to "a\nb": still a valid list
            assert o.rc == 0, o
            continue
        assert_one_line(o, "problem(s) found", rc=1, what=name)
        assert any(needle in p and f"{name}.txt" in p for p in problems_of(o)), (name, problems_of(o))
        with pytest.raises(DataError, match=f"{name}.txt"):
            load_dataset("voc", root, f"2007_{name}")
    # every split of the folder, the broken ones among them: each listed, the others checked
    o = call(main_tools, ["check-data", f"voc:{root}"])
    assert o.rc == 1 and "images: 3" in o.out and sum("ImageSets" in p for p in problems_of(o)) == 5
    o = call(main_tools, ["check-data", f"voc:{root}", "--split", "2007_nope"])
    assert_one_line(o, "2007_nope", "missing")
    for raw, needle in ((b"dog\n\xff\n", "not UTF-8"), (b"", "class list is empty"), (b"# only\n", "empty"),
                        (b"dog\ndog\n", "listed twice")):
        with open(os.path.join(root, "classes.txt"), "wb") as f:
            f.write(raw)
        o = call(main_tools, ["check-data", f"voc:{root}", "--split", "2007_trainval"])
        assert_one_line(o, "classes.txt", needle, what=needle)
        with pytest.raises(DataError, match="classes.txt"):
            load_dataset("voc", root, "2007_trainval")


def test_voc_evaluate_needs_no_image_file(tmp_path):
    root = str(tmp_path / "voc")
    base = make_voc(root)
    for f in os.listdir(os.path.join(base, "JPEGImages")):
        os.remove(os.path.join(base, "JPEGImages", f))
    dets = tmp_path / "d.json"
    dets.write_text(json.dumps([{"image_id": "a", "category_id": "dog", "bbox": [1, 2, 19, 23], "score": 0.9}]))
    for metric in ("voc07", "coco"):
        o = call(main_tools, ["evaluate", "--dataset", f"voc:{root}", "--split", "2007_trainval", "--detections",
                              str(dets), "--metric", metric])
        assert o.rc == 0 and not o.lines, o
        out = json.loads(o.out)
        assert out["per_class"]["dog"] == pytest.approx(100.0)


# --- COCO -----------------------------------------------------------------------------------------
def make_coco(root, write_images=True):
    return write_coco(root, "val2017", [(1, "a.jpg", 40, 30), (2, "b.jpg", 32, 32)],
                      [(1, 1, [2, 3, 18, 20]), (1, 2, [5, 5, 10, 10]), (2, 1, [0, 0, 16, 16], 1)],
                      [(1, "dog"), (2, "cat")], write_images=write_images)


def detections(tmp_path):
    p = tmp_path / "dets.json"
    p.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [2, 3, 18, 20], "score": 0.9},
                             {"image_id": 1, "category_id": 2, "bbox": [5, 5, 10, 10], "score": 0.8},
                             {"image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.3}]))
    return str(p)


def evaluate(root, dets):
    return call(main_tools, ["evaluate", "--dataset", f"coco:{root}", "--detections", dets])


COCO_MUST_FAIL = [   # (annotations[1] with this key deleted (None) or set) -> the reader refuses
    ("id", None), ("id", 0), ("id", -3), ("id", "2"), ("id", 1.5), ("id", True), ("id", 1),   # 1: annotations[0]'s
    ("image_id", None), ("image_id", 99), ("image_id", [1]), ("image_id", True), ("image_id", "1"),
    ("category_id", None), ("category_id", 7), ("category_id", {"a": 1}), ("category_id", 1.0),
    ("bbox", None), ("bbox", [1, 2, 3]), ("bbox", [1, 2, 3, NAN]), ("bbox", "1 2 3 4"), ("bbox", [1, 2, 3, HUGE ** 20]),
    ("bbox", [1e300, 2, 3, 4]),
    ("area", "x"), ("area", -1), ("area", NAN), ("area", None), ("iscrowd", 2), ("iscrowd", "0"), ("iscrowd", None),
]


def test_coco_annotations_pycocotools_would_crash_on(tmp_path):
    root = str(tmp_path / "coco")
    path, data = make_coco(root)
    dets = detections(tmp_path)
    ok = evaluate(root, dets)
    assert ok.rc == 0 and json.loads(ok.out)["AP"] is not None
    for key, value in COCO_MUST_FAIL:
        d = json.loads(json.dumps(data))
        if value is None and key in ("id", "image_id", "category_id", "bbox"):
            del d["annotations"][1][key]
        else:
            d["annotations"][1][key] = value
        with open(path, "w") as f:
            json.dump(d, f)
        what = f"annotations[1].{key}={value!r}"
        o = evaluate(root, dets)
        assert_one_line(o, "instances_val2017.json", "annotations[1]", what=what)
        o = call(main_tools, ["check-data", f"coco:{root}"])
        assert_one_line(o, "problem(s) found", rc=1, what=what)
        assert any("annotations[1]" in p for p in problems_of(o)), (what, problems_of(o))


def test_coco_missing_area_and_iscrowd_are_filled_and_noted(tmp_path):
    root = str(tmp_path / "coco")
    path, data = make_coco(root, write_images=False)     # no image file at all: evaluate needs none
    dets = detections(tmp_path)
    ref = json.loads(evaluate(root, dets).out)
    for a in data["annotations"]:
        del a["area"], a["iscrowd"]
    data["annotations"][2]["iscrowd"] = 1                 # the crowd box keeps its flag
    with open(path, "w") as f:
        json.dump(data, f)
    o = evaluate(root, dets)
    assert o.rc == 0 and not o.lines, o
    assert json.loads(o.out)["AP"] == pytest.approx(ref["AP"])
    for name, w, h in (("a.jpg", 40, 30), ("b.jpg", 32, 32)):
        write_image(os.path.join(root, "val2017", name), w, h)
    o = call(main_tools, ["check-data", f"coco:{root}"])
    assert o.rc == 0 and "without 'area'" in o.out and "without 'iscrowd'" in o.out, o


def test_coco_files_of_every_shape(tmp_path):
    root = str(tmp_path / "coco")
    path, data = make_coco(root)
    dets = detections(tmp_path)
    before = snapshot(root)
    variants = [("images", {"a": 1}), ("categories", "x"), ("annotations", None)]
    for k, v in variants:
        d = dict(data, **{k: v})
        with open(path, "w") as f:
            json.dump(d, f)
        assert_one_line(evaluate(root, dets), "instances_val2017.json", k, what=k)
    for what, image in (("no id", {"file_name": "a.jpg", "width": 40, "height": 30}),
                        ("id str", {"id": "1", "file_name": "a.jpg", "width": 40, "height": 30}),
                        ("width 0", {"id": 1, "file_name": "a.jpg", "width": 0, "height": 30}),
                        ("width bool", {"id": 1, "file_name": "a.jpg", "width": True, "height": 30}),
                        ("file_name list", {"id": 1, "file_name": ["a.jpg"], "width": 40, "height": 30})):
        d = json.loads(json.dumps(data))
        d["images"][0] = image
        with open(path, "w") as f:
            json.dump(d, f)
        assert_one_line(evaluate(root, dets), "instances_val2017.json", "images[0]", what=what)
    for what, cat, needle in (("no name", {"id": 1}, "categories[0]"),
                              ("name int", {"id": 1, "name": 5}, "categories[0]"),
                              ("dup", {"id": 2, "name": "x"}, "duplicate category id 2")):
        d = json.loads(json.dumps(data))
        d["categories"][0] = cat
        with open(path, "w") as f:
            json.dump(d, f)
        assert_one_line(evaluate(root, dets), "instances_val2017.json", needle, what=what)
    good = json.dumps(data).encode()
    for what, raw in byte_variants(good, 40, seed=5) + [("deep", b"[" * 100000 + b"]" * 100000)]:
        with open(path, "wb") as f:
            f.write(raw)
        o = evaluate(root, dets)
        assert o.rc in (0, 2), (what, o)
        if o.rc == 2:
            assert_one_line(o, "instances_val2017.json", what=what)
        o = call(main_tools, ["check-data", f"coco:{root}", "--no-decode"])
        assert o.rc in (0, 1) and len(o.lines) == (o.rc == 1), (what, o)
    with open(path, "wb") as f:
        f.write(good)
    after = snapshot(root)
    assert after == before


def test_detection_files(tmp_path):
    root = str(tmp_path / "coco")
    make_coco(root, write_images=False)
    dets = detections(tmp_path)
    entries = json.load(open(dets))
    cases = [("image_id", 99), ("image_id", [1]), ("image_id", True), ("image_id", None), ("category_id", 7),
             ("category_id", {"x": 1}), ("category_id", False), ("bbox", [1, 2, 3]), ("bbox", [1, 2, NAN, 3]),
             ("bbox", "x"), ("bbox", [1, 2, 3, HUGE ** 20]), ("score", NAN), ("score", "0.5"), ("score", None),
             ("score", True), ("score", DEEP)]
    for key, value in cases:
        e = json.loads(json.dumps(entries))
        e[1][key] = value
        if value is None:
            del e[1][key]
        with open(dets, "w") as f:
            f.write(json.dumps(e))
        o = evaluate(root, dets)
        assert_one_line(o, "dets.json", "[1]", key, what=f"{key}={value!r}")
    for raw, needle in ((b"{}", "expected a JSON list"), (b"[1]", "[0]"), (b"[\xff]", "not UTF-8"),
                        (b"[" * 100000 + b"]" * 100000, "nested too deeply"), (b"", "invalid JSON")):
        with open(dets, "wb") as f:
            f.write(raw)
        assert_one_line(evaluate(root, dets), "dets.json", needle, what=needle)
    good = json.dumps(entries).encode()
    for what, raw in byte_variants(good, 30, seed=9):
        with open(dets, "wb") as f:
            f.write(raw)
        o = evaluate(root, dets)
        assert o.rc in (0, 2), (what, o)
        if o.rc == 2:
            assert_one_line(o, "dets.json", what=what)
    o = call(main_tools, ["evaluate", "--dataset", f"coco:{root}", "--detections", str(tmp_path / "nope.json")])
    assert_one_line(o, "nope.json", "cannot read")
