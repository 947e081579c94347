"""COCO reader: ``ROOT/annotations/instances_<split>.json`` + images in ``ROOT/<split>/``.

* Category ids (non-contiguous in COCO: 1..90 with gaps) map to contiguous class indices in
  ascending id order; ``DetectionDataset.cat_ids[index]`` maps back.
* ``bbox`` ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]`` (COCO coordinates are already 0-based
  pixel-edge). ``iscrowd`` boxes are kept with ``crowd=True``: excluded from training targets, and
  handled by pycocotools at evaluation. Images without annotations are kept (no objects).
* Image files are looked for in ``ROOT/<split>/`` then ``ROOT/images/<split>/``; with
  ``check_images=False`` (scoring a detections file) they need not exist.
* What pycocotools needs of every annotation is checked here, so that evaluation never fails
  inside it: an ``id`` (an integer >= 1, unique: pycocotools matches detections to annotations by
  id and takes 0 for "unmatched"); ``area`` (a missing one is computed as bbox ``w * h``, as
  pycocotools does for detections); ``iscrowd`` (0 or 1; a missing one is taken as 0). Filled-in
  values are reported as notes (``check-data`` prints them; they are not errors).
* Fatal (``DataError`` naming the file and the entry): an unreadable, non-UTF-8 or malformed
  file, missing top-level keys, an image without an integer ``id``, a ``file_name`` or positive
  integer ``width``/``height``, a category without an integer ``id`` and a name, an annotation
  without a valid ``id``, naming an unknown image or category, a bbox that is not 4 finite
  numbers, an ``area`` that is not a non-negative number, an ``iscrowd`` that is not 0 or 1,
  duplicate image/category/annotation ids, a missing image file (``check_images=True``).
"""
import os
from typing import Dict, List, Optional, Tuple

from ..reading import read_json
from ..schema import finite_number, show_value
from .records import MAX_COORD, DataError, DetectionDataset, Problem, box_problems, make_record, raise_fatal


def annotation_path(root: str, split: str) -> str:
    return os.path.join(root, "annotations", f"instances_{split}.json")


def image_dir(root: str, split: str) -> str:
    for d in (os.path.join(root, split), os.path.join(root, "images", split)):
        if os.path.isdir(d):
            return d
    return os.path.join(root, split)


def available_splits(root: str) -> List[str]:
    d = os.path.join(root, "annotations")
    if not os.path.isdir(d):
        return []
    return [f[len("instances_"):-5] for f in sorted(os.listdir(d))
            if f.startswith("instances_") and f.endswith(".json")]


def read_coco_json(path: str, available: Optional[List[str]] = None) -> dict:
    if not os.path.isfile(path):
        hint = f" (available splits: {', '.join(available)})" if available else ""
        raise DataError(f"{path}: annotation file is missing{hint}")
    data = read_json(path, DataError, "annotation file", max_depth=None)   # big files: not walked
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: key {key!r} is missing or not a list")
    return data


def _finite_numbers(v, n) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == n and all(finite_number(x) and abs(x) <= MAX_COORD for x in v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_annotation(a, images, cat_index, ann_ids) -> Optional[str]:
    """What is wrong with one annotation entry (None: usable)."""
    if not isinstance(a, dict):
        return "expected an object"
    iid = a.get("image_id")
    if not _is_int(iid) or iid not in images:
        return f"image_id {show_value(iid)} is not in 'images'"
    cid = a.get("category_id")
    if not _is_int(cid) or cid not in cat_index:
        return f"category_id {show_value(cid)} is not in 'categories'"
    if not _finite_numbers(a.get("bbox"), 4):
        return f"bbox {show_value(a.get('bbox'))} is not 4 finite numbers [x, y, w, h] (of at most {MAX_COORD:g})"
    aid = a.get("id")
    if "id" not in a:
        return "'id' is missing (pycocotools matches detections to annotations by id)"
    if not _is_int(aid) or aid < 1:
        return f"id {show_value(aid)} is not an integer >= 1 (pycocotools takes id 0 for 'unmatched')"
    if aid in ann_ids:
        return f"duplicate annotation id {aid} (also annotations[{ann_ids[aid]}])"
    if "area" in a:
        v = a["area"]
        if not finite_number(v) or v < 0:
            return f"area {show_value(v)} is not a non-negative number"
    if "iscrowd" in a and a["iscrowd"] not in (0, 1):
        return f"iscrowd {show_value(a['iscrowd'])} is not 0 or 1"
    return None


def parse_coco(data: dict, path: str, img_dir: str, check_images: bool = True):
    """``(class_names, cat_ids, records, problems, notes)`` from a loaded instances JSON; ``notes``
    are the filled-in fields (see module doc). Missing ``area``/``iscrowd`` are set in ``data``."""
    problems: List[Problem] = []
    cats = {}
    for k, c in enumerate(data["categories"]):
        where = f"{path}: categories[{k}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")) or not isinstance(c.get("name"), str) \
                or not c["name"].strip():
            problems.append(Problem("fatal", where, "expected {'id': integer, 'name': non-empty string}"))
            continue
        if c["id"] in cats:
            problems.append(Problem("fatal", where, f"duplicate category id {c['id']}"))
            continue
        cats[c["id"]] = c["name"]
    if not cats and not problems:
        problems.append(Problem("fatal", f"{path}: categories", "no categories"))
    cat_ids = tuple(sorted(cats))
    cat_index = {c: i for i, c in enumerate(cat_ids)}
    class_names = tuple(cats[c] for c in cat_ids)

    images: Dict[int, dict] = {}
    order = []
    for k, im in enumerate(data["images"]):
        where = f"{path}: images[{k}]"
        if not isinstance(im, dict):
            problems.append(Problem("fatal", where, "expected an object"))
            continue
        missing = [f for f in ("id", "file_name", "width", "height") if f not in im]
        if missing:
            problems.append(Problem("fatal", where, f"field(s) {missing} missing"))
            continue
        if not _is_int(im["id"]):
            problems.append(Problem("fatal", where, f"id {show_value(im['id'])} is not an integer"))
            continue
        if not isinstance(im["file_name"], str) or not im["file_name"]:
            problems.append(Problem("fatal", where, f"file_name {show_value(im['file_name'])} is not a file name"))
            continue
        if not (_is_int(im["width"]) and _is_int(im["height"]) and im["width"] > 0 and im["height"] > 0):
            size = f"{show_value(im['width'])}x{show_value(im['height'])}"
            problems.append(Problem("fatal", where, f"width/height {size} are not positive integers"))
            continue
        if im["id"] in images:
            problems.append(Problem("fatal", where, f"duplicate image id {im['id']}"))
            continue
        images[im["id"]] = im
        order.append(im["id"])
    anns: Dict[int, list] = {i: [] for i in images}
    ann_ids: Dict[int, int] = {}
    no_area = no_crowd = 0
    for k, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{k}]"
        bad = _check_annotation(a, images, cat_index, ann_ids)
        if bad is not None:
            problems.append(Problem("fatal", where, bad))
            continue
        ann_ids[a["id"]] = k
        if "area" not in a:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
            no_area += 1
        if "iscrowd" not in a:
            a["iscrowd"] = 0
            no_crowd += 1
        anns[a["image_id"]].append((k, a))
    notes = []
    if no_area:
        notes.append(f"{path}: {no_area} annotation(s) without 'area': computed as bbox w * h")
    if no_crowd:
        notes.append(f"{path}: {no_crowd} annotation(s) without 'iscrowd': taken as 0")

    records = []
    for image_id in order:
        im = images[image_id]
        ipath = os.path.join(img_dir, im["file_name"])
        if check_images and not os.path.isfile(ipath):
            problems.append(Problem("fatal", f"{path}: image {image_id}", f"image file is missing: {ipath}"))
            continue
        boxes, labels, crowd, ids = [], [], [], []
        for k, a in anns[image_id]:
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append((x, y, x + w, y + h))
            labels.append(cat_index[a["category_id"]])
            crowd.append(bool(a["iscrowd"]))
            ids.append(k)
        rec = make_record(image_id, ipath, im["width"], im["height"], boxes, labels, crowd=crowd, source=path)
        for i, msg in box_problems(rec.boxes, rec.width, rec.height):
            problems.append(Problem("box", f"{path}: annotations[{ids[i]}] (image {image_id})", msg))
        records.append(rec)
    return class_names, cat_ids, records, problems, notes


def load_coco(root: str, split: str, check_images: bool = True):
    """Read a split; raises ``DataError`` on the first fatal problem. Returns a ``DetectionDataset``."""
    path = annotation_path(root, split)
    data = read_coco_json(path, available_splits(root))
    class_names, cat_ids, records, problems, _ = parse_coco(data, path, image_dir(root, split), check_images)
    raise_fatal(problems)
    return DetectionDataset(format="coco", root=root, split=split, class_names=class_names, records=records,
                            cat_ids=cat_ids, coco_json=data, problems=problems)


def records_to_coco_json(records, class_names, cat_ids=None, difficult_as_crowd: bool = True) -> Tuple[dict, dict]:
    """A COCO ground-truth dict built from records (for pycocotools on VOC-format data).

    Returns ``(gt_json, image_id_map)`` where ``image_id_map`` maps the records' ids to the integer
    ids used in the JSON (pycocotools needs integers). VOC ``difficult`` objects become
    ``iscrowd=1`` so that pycocotools ignores matches to them (its only ignore mechanism).
    """
    cat_ids = tuple(cat_ids) if cat_ids is not None else tuple(range(1, len(class_names) + 1))
    id_map = {}
    images, anns = [], []
    for n, rec in enumerate(records):
        iid = rec.image_id if isinstance(rec.image_id, int) else n + 1
        id_map[rec.image_id] = iid
        images.append({"id": iid, "width": rec.width, "height": rec.height,
                       "file_name": os.path.basename(rec.image_path)})
        for b, lab, dif, crowd in zip(rec.boxes.tolist(), rec.labels.tolist(), rec.difficult.tolist(),
                                      rec.crowd.tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cat_ids[lab],
                         "bbox": [b[0], b[1], w, h], "area": w * h,
                         "iscrowd": int(crowd or (dif and difficult_as_crowd))})
    cats = [{"id": c, "name": n} for c, n in zip(cat_ids, class_names)]
    return {"images": images, "annotations": anns, "categories": cats}, id_map
