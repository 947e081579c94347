"""Pascal VOC mAP at IoU 0.5, following the VOC devkit's ``VOCevaldet`` logic.

* Per class, detections of all images are sorted by descending score (stable: ties keep input
  order). Each one is compared with the ground truth of its image and class: the GT of highest IoU
  is taken; if that IoU is ``> iou_threshold`` (strictly, as the devkit) and the GT is difficult,
  the detection is ignored (neither TP nor FP); if it is not difficult and not yet matched it is a
  TP (and the GT becomes matched); otherwise (duplicate, or IoU too low) it is a FP.
* Recall = TP / number of non-difficult GT; precision = TP / (TP + FP).
* AP: ``"voc07"`` = 11-point interpolation (mean over t in 0, 0.1, ..., 1 of the max precision at
  recall >= t, 0 where none); ``"voc10"`` = all-point (area under the precision envelope, VOC2010+).
* Classes without non-difficult ground truth get AP ``None`` and are left out of the mean (their
  detections can only be false positives, and recall is undefined). If no class has ground truth,
  mAP is ``None``.
* IoU uses continuous coordinates, ``area = (x2 - x1) * (y2 - y1)``; with the readers' VOC
  conversion (``x1 = xmin - 1``, ``x2 = xmax``) this equals the devkit's ``+1`` formula on GT.
* Values are reported in percent (like the papers' tables).
"""
from typing import Dict, Mapping, Sequence

import numpy as np

METRICS = {"voc07": True, "voc10": False}     # name -> use 11-point


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (N, M) of x1y1x2y2 boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = True) -> float:
    """AP from recall/precision arrays ordered by descending score (fractions, not percent)."""
    rec = np.asarray(recall, np.float64)
    prec = np.asarray(precision, np.float64)
    if use_07_metric:
        ps = []
        for t in np.arange(11) / 10.0:
            sel = rec >= t - 1e-12      # tolerance: a recall of exactly 3/10 reaches t = 0.3
            ps.append(prec[sel].max() if sel.any() else 0.0)
        return float(np.sum(ps) / 11.0)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _as_dets(d):
    if isinstance(d, Mapping):
        return (np.asarray(d["boxes"], np.float64).reshape(-1, 4), np.asarray(d["scores"], np.float64).reshape(-1),
                np.asarray(d["labels"], np.int64).reshape(-1))
    boxes, scores, labels = d
    return (np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1),
            np.asarray(labels, np.int64).reshape(-1))


def eval_class(cls: int, detections: Mapping, ground_truth: Mapping, iou_threshold: float):
    """``(tp, fp, scores, npos)`` arrays for one class, detections in descending score order."""
    gts = {}
    npos = 0
    for iid, g in ground_truth.items():
        lab = np.asarray(g["labels"]).reshape(-1)
        m = lab == cls
        if not m.any():
            continue
        dif = np.asarray(g.get("difficult", np.zeros(len(lab), bool)), bool).reshape(-1)[m]
        gts[iid] = (np.asarray(g["boxes"], np.float64).reshape(-1, 4)[m], dif, np.zeros(int(m.sum()), bool))
        npos += int((~dif).sum())
    img_of, boxes, scores = [], [], []
    for iid, d in detections.items():
        b, s, lab = _as_dets(d)
        m = lab == cls
        if m.any():
            img_of.extend([iid] * int(m.sum()))
            boxes.append(b[m])
            scores.append(s[m])
    if not scores:
        return np.zeros(0), np.zeros(0), np.zeros(0), npos
    boxes = np.concatenate(boxes)
    scores = np.concatenate(scores)
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for k, j in enumerate(order):
        g = gts.get(img_of[j])
        if g is None:
            fp[k] = 1
            continue
        gb, dif, used = g
        ious = box_iou(boxes[j:j + 1], gb)[0]
        best = int(np.argmax(ious))
        if ious[best] > iou_threshold:
            if dif[best]:
                continue
            if not used[best]:
                tp[k] = 1
                used[best] = True
            else:
                fp[k] = 1
        else:
            fp[k] = 1
    return tp, fp, scores[order], npos


def voc_evaluate(detections: Mapping, ground_truth: Mapping, class_names: Sequence[str], metric: str = "voc07",
                 iou_threshold: float = 0.5) -> Dict:
    """VOC mAP.

    Args:
        detections: ``{image_id: {"boxes": (N,4), "scores": (N,), "labels": (N,)}}`` (or tuples);
            an image id absent from ``ground_truth`` counts as an image without objects.
        ground_truth: ``{image_id: {"boxes", "labels", "difficult"}}`` for every evaluated image.
        class_names: names by class index.
        metric: ``"voc07"`` (11-point) or ``"voc10"`` (all-point).

    Returns ``{"metric", "iou_threshold", "mAP", "per_class": {name: AP percent or None}, "num_gt": {name: n},
    "num_images", "num_detections"}``.
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: expected one of {sorted(METRICS)}")
    aps, num_gt = {}, {}
    ndet = 0
    for c, name in enumerate(class_names):
        tp, fp, _, npos = eval_class(c, detections, ground_truth, iou_threshold)
        ndet += len(tp)
        num_gt[name] = npos
        if npos == 0:
            aps[name] = None
            continue
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = ctp / npos
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(ctp + cfp > 0, ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps), 0.0)
        aps[name] = 100.0 * voc_ap(rec, prec, METRICS[metric])
    valid = [v for v in aps.values() if v is not None]
    return {"metric": metric, "iou_threshold": iou_threshold,
            "mAP": float(np.mean(valid)) if valid else None, "per_class": aps, "num_gt": num_gt,
            "num_images": len(ground_truth), "num_detections": ndet}


def ground_truth_of(records) -> Dict:
    """``{image_id: {"boxes", "labels", "difficult"}}`` from ``ImageRecord`` s (crowd counts as difficult)."""
    return {r.image_id: {"boxes": r.boxes, "labels": r.labels, "difficult": r.difficult | r.crowd}
            for r in records}
