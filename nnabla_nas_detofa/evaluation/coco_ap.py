"""COCO box AP through pycocotools' ``COCOeval``.

Results use the standard format: ``[{"image_id": int, "category_id": original COCO id,
"bbox": [x, y, w, h], "score": float}]``. Reported (percent, like the papers' tables): ``AP``
(IoU .50:.05:.95), ``AP50``, ``AP75``, ``APs``/``APm``/``APl`` (area < 32^2, 32^2-96^2, > 96^2),
``AR100``, and ``per_class`` AP by class name, plus pycocotools' 12-line ``summary``. A value
pycocotools cannot define (no ground truth in that area range or class) is ``None``. No results
at all gives AP 0 (not pycocotools' crash on an empty list). ``img_ids`` restricts the evaluation
to a subset (``params.imgIds``). pycocotools' console output is captured, not printed.
"""
import contextlib
import copy
import io
from typing import Dict, Iterable, List, Optional, Union

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..schema import finite_number, show_value

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")
AR100_INDEX = 8


class ResultsError(ValueError):
    """Detection results that do not fit the ground truth; the message names the entry."""


def coco_from_json(data: dict) -> COCO:
    """A pycocotools ``COCO`` over an in-memory instances dict (no file, no console output)."""
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def check_entry(r, where: str):
    """One COCO results entry: an object with the four keys of the format, ``bbox`` 4 finite
    numbers and ``score`` a finite number. Returns ``(bbox, score)``; ids are the caller's to check."""
    if not isinstance(r, dict):
        raise ResultsError(f"{where}: expected an object with image_id, category_id, bbox, score")
    for key in ("image_id", "category_id", "bbox", "score"):
        if key not in r:
            raise ResultsError(f"{where}: {key!r} is missing")
    b = r["bbox"]
    if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(finite_number(v) for v in b)):
        raise ResultsError(f"{where}: bbox {show_value(b)} is not 4 finite numbers [x, y, w, h]")
    s = r["score"]
    if not finite_number(s):
        raise ResultsError(f"{where}: score {show_value(s)} is not a finite number")
    return [float(v) for v in b], float(s)


def check_results(coco_gt: COCO, results: List[dict], where: str = "detections") -> None:
    img_ids = set(coco_gt.getImgIds())
    cat_ids = set(coco_gt.getCatIds())
    for k, r in enumerate(results):
        check_entry(r, f"{where}[{k}]")
        if _hashable(r["image_id"]) not in img_ids:
            raise ResultsError(f"{where}[{k}]: image_id {r['image_id']!r} is not in the ground truth")
        if _hashable(r["category_id"]) not in cat_ids:
            raise ResultsError(f"{where}[{k}]: category_id {r['category_id']!r} is not in the ground truth")


def _hashable(v):
    return v if isinstance(v, (int, str, float)) and not isinstance(v, bool) else repr(v)


def _pct(v: float) -> Optional[float]:
    return None if v < 0 else 100.0 * float(v)


def coco_evaluate(coco_gt: Union[COCO, dict], results: List[dict], img_ids: Optional[Iterable[int]] = None,
                  check: bool = True) -> Dict:
    """Box AP of ``results`` against ``coco_gt`` (a ``COCO`` or an instances dict)."""
    if isinstance(coco_gt, dict):
        coco_gt = coco_from_json(coco_gt)
    if check:
        check_results(coco_gt, results)
    ids = sorted(coco_gt.getImgIds()) if img_ids is None else sorted(set(img_ids))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if results:
            coco_dt = coco_gt.loadRes([copy.deepcopy(r) for r in results])
        else:
            coco_dt = coco_from_json({"images": list(coco_gt.dataset["images"]), "annotations": [],
                                      "categories": copy.deepcopy(coco_gt.dataset["categories"])})
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = ev.stats
    out = {"metric": "coco"}
    for i, name in enumerate(STAT_NAMES):
        out[name] = _pct(stats[i])
    out["AR100"] = _pct(stats[AR100_INDEX])
    per = {}
    prec = ev.eval["precision"]             # [T, R, K, A, M]
    for k, cat in enumerate(ev.params.catIds):
        p = prec[:, :, k, 0, -1]
        p = p[p > -1]
        per[coco_gt.cats[cat]["name"]] = 100.0 * float(p.mean()) if p.size else None
    out["per_class"] = per
    out["num_images"] = len(ids)
    out["num_detections"] = len(results)
    out["summary"] = [ln.strip() for ln in buf.getvalue().strip().splitlines()[-12:]]
    return out
