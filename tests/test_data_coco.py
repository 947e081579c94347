import json
import os

import numpy as np
import pytest

from test_data_fixtures import write_coco, write_image

from nnabla_nas_detofa.data import DataError, load_dataset, open_dataset
from nnabla_nas_detofa.data.coco import records_to_coco_json

CATS = [(90, "toothbrush"), (1, "person"), (3, "car")]


def make(root, **kw):
    images = [(7, "a.jpg", 40, 30), (3, "b.jpg", 20, 20), (12, "c.jpg", 16, 16)]
    anns = [(7, 3, [1.5, 2, 10, 5]), (7, 90, [0, 0, 40, 30], 1), (3, 1, [2, 2, 4, 4])]
    return write_coco(root, "val2017", images, anns, CATS, **kw)


def test_categories_boxes_crowd_and_empty_images(tmp_path):
    root = str(tmp_path)
    make(root)
    ds = open_dataset(f"coco:{root}", "val2017")
    # contiguous indices in ascending category-id order, and back
    assert ds.cat_ids == (1, 3, 90) and ds.class_names == ("person", "car", "toothbrush")
    assert [ds.category_id(i) for i in range(3)] == [1, 3, 90]
    assert ds.label_of(90) == 2 and ds.label_of(2) is None
    a, b, c = ds.records
    assert [r.image_id for r in ds.records] == [7, 3, 12]
    np.testing.assert_allclose(a.boxes, [[1.5, 2, 11.5, 7], [0, 0, 40, 30]])      # xywh -> x1y1x2y2
    assert a.labels.tolist() == [1, 2] and a.crowd.tolist() == [False, True]
    assert a.ignore.tolist() == [False, True] and not a.difficult.any()
    assert c.num_objects == 0 and c.boxes.shape == (0, 4)                   # image without boxes kept
    assert a.image_path == os.path.join(root, "val2017", "a.jpg")
    assert ds.coco_json["images"][0]["id"] == 7


def test_images_folder_fallback_and_default_split(tmp_path):
    root = str(tmp_path)
    make(root, write_images=False)
    for f, w, h in (("a.jpg", 40, 30), ("b.jpg", 20, 20), ("c.jpg", 16, 16)):
        write_image(os.path.join(root, "images", "val2017", f), w, h)
    ds = open_dataset(f"coco:{root}")          # default split val2017
    assert ds.split == "val2017" and ds.records[0].image_path == os.path.join(root, "images", "val2017", "a.jpg")


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: d["annotations"].append({"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1]}),
     r"annotations\[3\]: image_id 99 is not in 'images'"),
    (lambda d: d["annotations"].append({"image_id": 7, "category_id": 2, "bbox": [0, 0, 1, 1]}),
     r"annotations\[3\]: category_id 2 is not in 'categories'"),
    (lambda d: d["annotations"].append({"image_id": 7, "category_id": 1, "bbox": [0, 0, 1]}),
     r"annotations\[3\]: bbox \[0, 0, 1\] is not 4 finite numbers"),
    (lambda d: d["images"].append({"id": 7, "file_name": "a.jpg", "width": 4, "height": 4}),
     r"images\[3\]: duplicate image id 7"),
    (lambda d: d["images"][1].pop("width"), r"images\[1\]: field\(s\) \['width'\] missing"),
    (lambda d: d.pop("categories"), r"key 'categories' is missing"),
])
def test_fatal_problems(tmp_path, mutate, pattern):
    root = str(tmp_path)
    path, data = make(root)
    mutate(data)
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(DataError, match=pattern):
        load_dataset("coco", root, "val2017")


def test_malformed_json_missing_file_and_missing_image(tmp_path):
    root = str(tmp_path)
    path, _ = make(root)
    with pytest.raises(DataError, match=r"instances_train2017.json: annotation file is missing.*val2017"):
        load_dataset("coco", root, "train2017")
    os.remove(os.path.join(root, "val2017", "b.jpg"))
    with pytest.raises(DataError, match=r"image 3: image file is missing: .*b\.jpg"):
        load_dataset("coco", root, "val2017")
    with open(path, "w") as f:
        f.write('{"images": [\n  {"id": 1,, }]}')
    with pytest.raises(DataError, match=r"instances_val2017.json:2:[0-9]+: invalid JSON"):
        load_dataset("coco", root, "val2017")
    with pytest.raises(DataError, match="classes"):
        load_dataset("coco", root, "val2017", classes=["a"])


def test_records_to_coco_json_round_trip(tmp_path):
    root = str(tmp_path)
    make(root)
    ds = load_dataset("coco", root, "val2017")
    gt, id_map = records_to_coco_json(ds.records, ds.class_names, ds.cat_ids)
    assert id_map == {7: 7, 3: 3, 12: 12}
    assert [c["id"] for c in gt["categories"]] == [1, 3, 90]
    a0 = gt["annotations"][0]
    assert a0["image_id"] == 7 and a0["category_id"] == 3 and a0["bbox"] == [1.5, 2.0, 10.0, 5.0] and a0["iscrowd"] == 0
    assert gt["annotations"][1]["iscrowd"] == 1
