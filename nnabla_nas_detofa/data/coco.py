"""COCO reader: ``ROOT/annotations/instances_<split>.json`` + images in ``ROOT/<split>/``.

* Category ids (non-contiguous in COCO: 1..90 with gaps) map to contiguous class indices in
  ascending id order; ``DetectionDataset.cat_ids[index]`` maps back.
* ``bbox`` ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]`` (COCO coordinates are already 0-based
  pixel-edge). ``iscrowd`` boxes are kept with ``crowd=True``: excluded from training targets, and
  handled by pycocotools at evaluation. Images without annotations are kept (no objects).
* Image files are looked for in ``ROOT/<split>/`` then ``ROOT/images/<split>/``.
* Fatal (``DataError``): missing/malformed JSON, missing top-level keys or image fields, an
  annotation naming an unknown image or category, a bbox that is not 4 finite numbers, duplicate
  image/category ids, a missing image file (``check_images=True``).
"""
import json
import math
import os
from typing import Dict, List, Optional, Tuple

from .records import DataError, DetectionDataset, Problem, box_problems, make_record, raise_fatal


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
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: malformed JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: key {key!r} is missing or not a list")
    return data


def _finite_numbers(v, n) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == n and
            all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v))


def parse_coco(data: dict, path: str, img_dir: str, check_images: bool = True):
    """``(class_names, cat_ids, records, problems)`` from a loaded instances JSON."""
    problems: List[Problem] = []
    cats = {}
    for k, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "name" not in c:
            problems.append(Problem("fatal", f"{path}: categories[{k}]", "expected {'id': int, 'name': str}"))
            continue
        if c["id"] in cats:
            problems.append(Problem("fatal", f"{path}: categories[{k}]", f"duplicate category id {c['id']}"))
        cats[c["id"]] = str(c["name"])
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
        if not isinstance(im["id"], int) or isinstance(im["id"], bool):
            problems.append(Problem("fatal", where, f"id {im['id']!r} is not an integer"))
            continue
        if not (isinstance(im["width"], int) and isinstance(im["height"], int) and im["width"] > 0
                and im["height"] > 0):
            problems.append(Problem("fatal", where, f"width/height {im['width']!r}x{im['height']!r} "
                                                    f"are not positive integers"))
            continue
        if im["id"] in images:
            problems.append(Problem("fatal", where, f"duplicate image id {im['id']}"))
            continue
        images[im["id"]] = im
        order.append(im["id"])
    anns: Dict[int, list] = {i: [] for i in images}
    for k, a in enumerate(data["annotations"]):
        where = f"{path}: annotations[{k}]"
        if not isinstance(a, dict):
            problems.append(Problem("fatal", where, "expected an object"))
            continue
        if a.get("image_id") not in images:
            problems.append(Problem("fatal", where, f"image_id {a.get('image_id')!r} is not in 'images'"))
            continue
        if a.get("category_id") not in cat_index:
            problems.append(Problem("fatal", where, f"category_id {a.get('category_id')!r} is not in "
                                                    f"'categories'"))
            continue
        if not _finite_numbers(a.get("bbox"), 4):
            problems.append(Problem("fatal", where, f"bbox {a.get('bbox')!r} is not 4 finite numbers [x, y, w, h]"))
            continue
        anns[a["image_id"]].append((k, a))

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
            crowd.append(bool(a.get("iscrowd", 0)))
            ids.append(k)
        rec = make_record(image_id, ipath, im["width"], im["height"], boxes, labels, crowd=crowd, source=path)
        for i, msg in box_problems(rec.boxes, rec.width, rec.height):
            problems.append(Problem("box", f"{path}: annotations[{ids[i]}] (image {image_id})", msg))
        records.append(rec)
    return class_names, cat_ids, records, problems


def load_coco(root: str, split: str, check_images: bool = True):
    """Read a split; raises ``DataError`` on the first fatal problem. Returns a ``DetectionDataset``."""
    path = annotation_path(root, split)
    data = read_coco_json(path, available_splits(root))
    class_names, cat_ids, records, problems = parse_coco(data, path, image_dir(root, split), check_images)
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
