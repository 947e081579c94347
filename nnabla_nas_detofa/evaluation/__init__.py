"""Detection metrics: VOC mAP (11-point / all-point) and COCO AP (pycocotools), evaluator classes.

``evaluation/path_eval.py`` (evaluating a supernet path end to end) belongs to the integrator and
builds on ``make_evaluator`` plus ``data.pipeline.EvalMeta.to_original``.
"""
from .coco_ap import ResultsError, coco_evaluate, coco_from_json
from .evaluators import (METRICS, COCOEvaluator, DatasetEvaluator, VOCEvaluator, default_metric,
                         detections_to_results, evaluate_results, load_results, make_evaluator,
                         results_to_detections)
from .voc_map import box_iou, ground_truth_of, voc_ap, voc_evaluate

__all__ = ["ResultsError", "coco_evaluate", "coco_from_json", "METRICS", "COCOEvaluator", "DatasetEvaluator",
           "VOCEvaluator", "default_metric", "detections_to_results", "evaluate_results", "load_results",
           "make_evaluator", "results_to_detections", "box_iou", "ground_truth_of", "voc_ap", "voc_evaluate"]
