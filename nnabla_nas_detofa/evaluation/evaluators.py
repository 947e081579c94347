"""Detectron2-style evaluators and the detection-file format.

Detections of one image are a dict ``{"boxes": (N, 4) x1y1x2y2 in original-image pixels (0-based
pixel-edge, see ``data.records``), "scores": (N,), "labels": (N,) contiguous class indices}``.

``evaluator.reset(); evaluator.process(image_ids, detections); evaluator.evaluate() -> dict``.
Only processed images are evaluated (an image processed with no detections counts; one never
processed does not), so a subset can be scored; processing an image twice is an error (e.g. a
padded batch fed back). ``export()`` / ``merge()`` move processed detections between ranks.

Detection files (``evaluate --detections``) use the COCO results format, a JSON list of
``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` in original-image pixels. For
COCO data ``image_id`` is the integer COCO id and ``category_id`` the original COCO category id;
for VOC data ``image_id`` is the file stem (string, e.g. ``"000005"``) and ``category_id`` the
class name (e.g. ``"dog"``). Any metric works on either format: VOC metrics treat COCO crowd
boxes as difficult; the COCO metric on VOC data turns difficult boxes into ``iscrowd`` regions.
"""
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..data.coco import records_to_coco_json
from ..reading import read_json
from ..schema import show_value
from ..data.records import DetectionDataset
from .coco_ap import ResultsError, check_entry, coco_evaluate, coco_from_json
from .voc_map import METRICS as VOC_METRICS
from .voc_map import ground_truth_of, voc_evaluate

METRICS = tuple(sorted(VOC_METRICS)) + ("coco",)


def default_metric(dataset: DetectionDataset) -> str:
    return "coco" if dataset.format == "coco" else "voc07"


def _dets(d) -> Dict[str, np.ndarray]:
    if isinstance(d, Mapping):
        b, s, lab = d["boxes"], d["scores"], d["labels"]
    else:
        b, s, lab = d
    b = np.asarray(b, np.float64).reshape(-1, 4)
    s = np.asarray(s, np.float64).reshape(-1)
    lab = np.asarray(lab, np.int64).reshape(-1)
    if not (len(b) == len(s) == len(lab)):
        raise ValueError(f"detections: {len(b)} boxes, {len(s)} scores, {len(lab)} labels")
    return {"boxes": b, "scores": s, "labels": lab}


def detections_to_results(dataset: DetectionDataset, image_ids: Sequence, detections: Sequence) -> List[dict]:
    """Per-image detections -> COCO results entries with the dataset's ids (see module doc)."""
    out = []
    for iid, d in zip(image_ids, detections):
        d = _dets(d)
        for (x1, y1, x2, y2), s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist()):
            out.append({"image_id": iid, "category_id": dataset.category_id(int(lab)),
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)})
    return out


def load_results(path: str) -> list:
    """The entries of a detections file (one-line ``ResultsError`` naming the file on any problem;
    the entries are checked against the data by ``results_to_detections``)."""
    data = read_json(path, ResultsError, "detections file", max_depth=None)  # entries are type-checked
    if not isinstance(data, list):
        raise ResultsError(f"{path}: expected a JSON list of {{image_id, category_id, bbox, score}}")
    return data


def results_to_detections(dataset: DetectionDataset, results: list, where: str = "detections") -> Dict:
    """COCO results entries -> ``{image_id: dets}``; validates every entry against the dataset."""
    known = {r.image_id for r in dataset.records}
    per: Dict = {}
    for k, r in enumerate(results):
        b, s = check_entry(r, f"{where}[{k}]")
        iid = r["image_id"]
        if isinstance(iid, (dict, list, bool)) or iid not in known:
            hint = " (VOC image ids are file stems, as strings)" if dataset.format == "voc" else ""
            raise ResultsError(f"{where}[{k}]: image_id {show_value(iid)} is not in {dataset.split}{hint}")
        lab = None if isinstance(r["category_id"], (dict, list, bool)) else dataset.label_of(r["category_id"])
        if lab is None:
            what = "a class name: " + ", ".join(dataset.class_names) if dataset.format == "voc" else \
                "a category id of the annotation file"
            raise ResultsError(f"{where}[{k}]: category_id {show_value(r['category_id'])} is not {what}")
        per.setdefault(iid, ([], [], []))
        per[iid][0].append([b[0], b[1], b[0] + b[2], b[1] + b[3]])
        per[iid][1].append(float(s))
        per[iid][2].append(lab)
    return {iid: _dets(v) for iid, v in per.items()}


class DatasetEvaluator:
    """Base: ``reset()``, ``process(image_ids, detections)``, ``evaluate() -> dict``."""

    def __init__(self, dataset: DetectionDataset):
        self.dataset = dataset
        self._records = {r.image_id: r for r in dataset.records}
        self.reset()

    def reset(self):
        self._dets: Dict = {}

    def process(self, image_ids: Sequence, detections: Sequence):
        image_ids = list(image_ids)
        detections = list(detections)
        if len(image_ids) != len(detections):
            raise ValueError(f"process: {len(image_ids)} image ids but {len(detections)} detections")
        for iid, d in zip(image_ids, detections):
            if iid not in self._records:
                raise ValueError(f"process: image id {iid!r} is not in {self.dataset.split}")
            if iid in self._dets:
                raise ValueError(f"process: image id {iid!r} processed twice")
            self._dets[iid] = _dets(d)

    def export(self) -> Dict:
        return dict(self._dets)

    def merge(self, other: Mapping):
        for iid, d in other.items():
            self.process([iid], [d])

    @property
    def image_ids(self) -> List:
        return list(self._dets)

    def evaluate(self) -> Dict:
        raise NotImplementedError


class VOCEvaluator(DatasetEvaluator):
    """VOC mAP@``iou_threshold`` (``metric`` "voc07" 11-point or "voc10" all-point)."""

    def __init__(self, dataset: DetectionDataset, metric: str = "voc07", iou_threshold: float = 0.5):
        if metric not in VOC_METRICS:
            raise ValueError(f"metric {metric!r}: expected one of {sorted(VOC_METRICS)}")
        self.metric = metric
        self.iou_threshold = iou_threshold
        super().__init__(dataset)

    def evaluate(self) -> Dict:
        gt = ground_truth_of(self._records[i] for i in self._dets)
        return voc_evaluate(self._dets, gt, self.dataset.class_names, self.metric, self.iou_threshold)


class COCOEvaluator(DatasetEvaluator):
    """COCO AP via pycocotools over the processed images (``params.imgIds``)."""

    def __init__(self, dataset: DetectionDataset):
        super().__init__(dataset)
        if dataset.format == "coco" and dataset.coco_json is not None:
            self._coco = coco_from_json(dataset.coco_json)
            self._id_map = None
        else:
            gt, self._id_map = records_to_coco_json(dataset.records, dataset.class_names, dataset.cat_ids)
            self._coco = coco_from_json(gt)
            self._cat_ids = [c["id"] for c in gt["categories"]]

    def evaluate(self) -> Dict:
        results = []
        for iid, d in self._dets.items():
            cid = iid if self._id_map is None else self._id_map[iid]
            for (x1, y1, x2, y2), s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist()):
                cat = self.dataset.cat_ids[lab] if self._id_map is None else self._cat_ids[lab]
                results.append({"image_id": cid, "category_id": cat, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "score": s})
        ids = list(self._dets) if self._id_map is None else [self._id_map[i] for i in self._dets]
        return coco_evaluate(self._coco, results, img_ids=ids, check=False)


def make_evaluator(dataset: DetectionDataset, metric: Optional[str] = None) -> DatasetEvaluator:
    metric = metric or default_metric(dataset)
    if metric == "coco":
        return COCOEvaluator(dataset)
    if metric in VOC_METRICS:
        return VOCEvaluator(dataset, metric)
    raise ValueError(f"metric {metric!r}: expected one of {', '.join(METRICS)}")


def evaluate_results(dataset: DetectionDataset, results: list, metric: Optional[str] = None,
                     where: str = "detections") -> Dict:
    """Score a COCO-format results list on every image of ``dataset`` (images without detections
    count as images with no detections)."""
    dets = results_to_detections(dataset, results, where)
    ev = make_evaluator(dataset, metric)
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, np.int64)}
    ids = [r.image_id for r in dataset.records]
    ev.process(ids, [dets.get(i, empty) for i in ids])
    out = ev.evaluate()
    out["dataset"] = f"{dataset.format}:{dataset.root}"
    out["split"] = dataset.split
    return out
