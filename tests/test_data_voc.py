import os

import numpy as np
import pytest

from test_data_fixtures import voc_object, voc_xml, write_image, write_voc

from nnabla_nas_detofa.data import DataError, VOC_CLASSES, load_dataset, open_dataset
from nnabla_nas_detofa.data.voc import available_splits, parse_split, voc_classes


def test_coordinates_flags_and_tolerance(tmp_path):
    root = str(tmp_path)
    write_voc(root, "2007", {
        # 1-based inclusive -> 0-based edges; float coords; empty <difficult/>; missing <truncated>
        "000001": (50, 40, [voc_object("dog", (1, 1, 50, 40)),
                            voc_object("cat", ("10.5", "2", "20", "30.25"), difficult="", truncated=None),
                            voc_object("person", (3, 4, 5, 6), difficult="1")]),
        # no <size>: read from the image header
        "000002": (64, 48, [voc_object(" car ", (2, 3, 10, 12), difficult=None)], {"size": False}),
    }, {"trainval": ["000001", "000002"]})
    ds = open_dataset(f"voc:{root}", "2007_trainval")
    assert ds.class_names == VOC_CLASSES and len(ds) == 2
    r1, r2 = ds.records
    assert r1.image_id == "000001" and (r1.width, r1.height) == (50, 40)
    np.testing.assert_allclose(r1.boxes, [[0, 0, 50, 40], [9.5, 1, 20, 30.25], [2, 3, 5, 6]])
    assert [VOC_CLASSES[i] for i in r1.labels] == ["dog", "cat", "person"]
    assert r1.difficult.tolist() == [False, False, True]
    assert r1.ignore.tolist() == [False, False, True]
    assert r1.image_path.endswith(os.path.join("VOC2007", "JPEGImages", "000001.jpg"))
    assert (r2.width, r2.height) == (64, 48)
    assert VOC_CLASSES[r2.labels[0]] == "car"
    assert ds.problems == []


def test_several_years_and_split_names(tmp_path):
    root = str(tmp_path)
    write_voc(root, "2007", {"000001": (20, 20, [voc_object("dog", (1, 1, 5, 5))]),
                             "000002": (20, 20, [])}, {"trainval": ["000001", "000002"], "test": ["000002"]})
    write_voc(root, "2012", {"2008_000001": (30, 30, [voc_object("cat", (2, 2, 9, 9))])},
              {"trainval": ["2008_000001"]})
    ds = load_dataset("voc", root, "2007_trainval+2012_trainval")
    assert [r.image_id for r in ds.records] == ["000001", "000002", "2008_000001"]
    assert ds.records[1].num_objects == 0
    assert sorted(available_splits(root)) == ["2007_test", "2007_trainval", "2012_trainval"]
    # a bare set name is ambiguous with two year folders
    with pytest.raises(DataError, match="name the year"):
        parse_split(root, "trainval")
    with pytest.raises(DataError, match="VOC2010"):
        load_dataset("voc", root, "2010_trainval")
    with pytest.raises(DataError, match="val.txt: image set file is missing.*2007_test"):
        load_dataset("voc", root, "2007_val")
    # default evaluation split
    assert open_dataset(f"voc:{root}").split == "2007_test"


def test_bare_split_names_and_year_folder_as_root(tmp_path):
    root = str(tmp_path)
    base = write_voc(root, "synth", {"000001": (20, 20, [voc_object("dog", (1, 1, 5, 5))])}, {"train": ["000001"]})
    assert len(load_dataset("voc", root, "train")) == 1          # the only year folder
    assert len(load_dataset("voc", base, "train")) == 1          # root is the year folder itself


def test_duplicate_ids_across_years_are_rejected(tmp_path):
    root = str(tmp_path)
    for y in ("2007", "2012"):
        write_voc(root, y, {"000001": (20, 20, [])}, {"trainval": ["000001"]})
    with pytest.raises(DataError, match="000001.*also listed"):
        load_dataset("voc", root, "2007_trainval+2012_trainval")


def test_class_list_convention(tmp_path):
    root = str(tmp_path)
    write_voc(root, "x", {"a": (20, 20, [voc_object("blob", (1, 1, 5, 5))])}, {"train": ["a"]})
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("# my classes\nthing\n\nblob\n")
    ds = load_dataset("voc", root, "x_train")
    assert ds.class_names == ("thing", "blob") and ds.records[0].labels.tolist() == [1]
    # an explicit list wins over classes.txt
    assert load_dataset("voc", root, "x_train", classes=["blob"]).records[0].labels.tolist() == [0]
    assert voc_classes(str(tmp_path / "nothing")) == VOC_CLASSES
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("a\nb\na\n")
    with pytest.raises(DataError, match="classes.txt: class 'a' is listed twice"):
        load_dataset("voc", root, "x_train")


@pytest.mark.parametrize("case, pattern", [
    ("missing_coord", r"000001\.xml: object 1 \(dog\): bndbox <xmax> is missing"),
    ("bad_coord", r"000001\.xml: object 1 \(dog\): bndbox <ymin> is 'abc', not a number"),
    ("unknown_class", r"000001\.xml: object 2 \(unicorn\): unknown class 'unicorn'"),
    ("no_bndbox", r"000001\.xml: object 1 \(dog\): <bndbox> is missing"),
    ("no_name", r"000001\.xml: object 1: <name> is missing"),
    ("malformed", r"000001\.xml: malformed XML"),
    ("missing_image", r"000001\.xml: image file is missing: .*JPEGImages.000001\.jpg"),
    ("missing_xml", r"000001\.xml: annotation file is missing"),
    ("bad_difficult", r"<difficult> is 'maybe'"),
])
def test_fatal_problems_name_file_and_field(tmp_path, case, pattern):
    root = str(tmp_path)
    objs = [voc_object("dog", (1, 1, 10, 10))]
    opts = {}
    if case == "missing_coord":
        objs = [voc_object("dog", (1, 1, None, 10))]
    elif case == "bad_coord":
        objs = [voc_object("dog", (1, "abc", 10, 10))]
    elif case == "unknown_class":
        objs.append(voc_object("unicorn", (1, 1, 10, 10)))
    elif case == "no_bndbox":
        objs = ["<object><name>dog</name></object>"]
    elif case == "no_name":
        objs = ["<object><bndbox><xmin>1</xmin></bndbox></object>"]
    elif case == "malformed":
        opts["xml"] = "<annotation><object></annotation>"
    elif case == "missing_image":
        opts["image"] = False
    elif case == "bad_difficult":
        objs = [voc_object("dog", (1, 1, 10, 10), difficult="maybe")]
    write_voc(root, "2007", {"000001": (20, 20, objs, opts)}, {"test": ["000001"]})
    if case == "missing_xml":
        os.remove(os.path.join(root, "VOC2007", "Annotations", "000001.xml"))
    with pytest.raises(DataError, match=pattern):
        load_dataset("voc", root, "2007_test")


def test_image_found_by_filename_field_and_other_extension(tmp_path):
    root = str(tmp_path)
    base = write_voc(root, "2007", {"a": (20, 20, [voc_object("dog", (1, 1, 5, 5))], {"image": False})},
                     {"test": ["a"]})
    write_image(os.path.join(base, "JPEGImages", "a.png"), 20, 20)
    assert load_dataset("voc", root, "2007_test").records[0].image_path.endswith("a.png")
    with open(os.path.join(base, "Annotations", "a.xml"), "w") as f:
        f.write(voc_xml("photo_a.jpg", 20, 20, [voc_object("dog", (1, 1, 5, 5))]))
    write_image(os.path.join(base, "JPEGImages", "photo_a.jpg"), 20, 20)
    os.remove(os.path.join(base, "JPEGImages", "a.png"))
    assert load_dataset("voc", root, "2007_test").records[0].image_path.endswith("photo_a.jpg")


def test_out_of_image_and_degenerate_boxes_are_soft_problems(tmp_path):
    root = str(tmp_path)
    write_voc(root, "2007", {"a": (20, 20, [voc_object("dog", (1, 1, 25, 10)), voc_object("cat", (8, 5, 6, 9)),
                                            voc_object("cow", (1, 1, 20, 20))])}, {"test": ["a"]})
    ds = load_dataset("voc", root, "2007_test")
    msgs = [str(p) for p in ds.problems]
    assert len(msgs) == 2 and all(p.kind == "box" for p in ds.problems)
    assert "object 1" in msgs[0] and "leaves the 20x20 image" in msgs[0]
    assert "object 2" in msgs[1] and "degenerate" in msgs[1]
    assert ds.records[0].num_objects == 3                     # kept as read; the loader clips


def test_open_dataset_spec_errors(tmp_path):
    with pytest.raises(DataError, match="expected voc:PATH or coco:PATH"):
        open_dataset("pascal:/x")
    with pytest.raises(DataError, match="no such directory"):
        open_dataset(f"voc:{tmp_path}/missing", "2007_test")
