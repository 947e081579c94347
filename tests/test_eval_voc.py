import json

import numpy as np
import pytest

from test_data_fixtures import voc_object, write_voc

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data import load_dataset, make_record
from nnabla_nas_detofa.data.dataset import DetectionDataset
from nnabla_nas_detofa.evaluation import (COCOEvaluator, VOCEvaluator, box_iou, detections_to_results,
                                          evaluate_results, voc_ap, voc_evaluate)

CLASSES = ("a", "b", "c")


def gt(boxes, labels, difficult=None):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "labels": np.array(labels),
            "difficult": np.array(difficult if difficult is not None else [False] * len(labels))}


def det(boxes, scores, labels):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "scores": np.array(scores, float),
            "labels": np.array(labels)}


# Hand-worked case. Class a: image 1 has A=(0,0,10,10); image 2 has B=(0,0,10,10) difficult and
# C=(20,20,30,30): 2 positives. Detections by score:
#   .9 on A -> TP; .8 on A again -> FP (duplicate); .7 on B -> ignored (difficult);
#   .6 on C -> TP; .5 nowhere -> FP.
# Counted: TP 1 1 2 2, FP 0 1 1 2 -> recall .5 .5 1 1, precision 1 .5 .667 .5.
# 11-point: t = 0..0.5 -> 1 (6 points), t = 0.6..1 -> 2/3 (5 points): (6 + 10/3) / 11 = 28/33.
# all-point: envelope 1 on [0, .5], 2/3 on (.5, 1] -> .5 + 1/3 = 5/6.
# Class b: only difficult GT -> no AP. Class c: no GT, one detection -> no AP.
GT = {1: gt([[0, 0, 10, 10]], [0]),
      2: gt([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0, 0, 1], [True, False, True])}
DETS = {1: det([[0, 0, 10, 10], [0.5, 0, 10, 10], [0, 0, 3, 3]], [.9, .8, .4], [0, 0, 2]),
        2: det([[0, 0, 10, 10], [20, 20, 30, 31], [60, 60, 70, 70]], [.7, .6, .5], [0, 0, 0])}


def test_hand_worked_07_and_10():
    r07 = voc_evaluate(DETS, GT, CLASSES, "voc07")
    r10 = voc_evaluate(DETS, GT, CLASSES, "voc10")
    assert r07["per_class"]["a"] == pytest.approx(100 * 28 / 33)
    assert r10["per_class"]["a"] == pytest.approx(100 * 5 / 6)
    assert r07["per_class"]["b"] is None and r07["per_class"]["c"] is None      # excluded from the mean
    assert r07["mAP"] == pytest.approx(100 * 28 / 33) and r10["mAP"] == pytest.approx(100 * 5 / 6)
    assert r07["num_gt"] == {"a": 2, "b": 0, "c": 0}
    assert r07["num_detections"] == 6 and r07["num_images"] == 2


def test_mean_over_classes_with_ground_truth():
    g = {1: gt([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])}
    d = {1: det([[0, 0, 10, 10], [50, 50, 60, 60]], [.9, .8], [0, 1])}
    r = voc_evaluate(d, g, CLASSES)
    assert r["per_class"] == {"a": 100.0, "b": 0.0, "c": None} and r["mAP"] == 50.0
    assert voc_evaluate({}, {1: gt([], [])}, CLASSES)["mAP"] is None


def test_iou_threshold_is_strict_and_matching_is_greedy():
    g = {1: gt([[0, 0, 10, 10]], [0])}
    # IoU exactly 0.5 is not enough (devkit uses ov > 0.5)
    assert box_iou([[0, 0, 10, 20]], [[0, 0, 10, 10]])[0, 0] == 0.5
    assert voc_evaluate({1: det([[0, 0, 10, 20]], [1], [0])}, g, CLASSES)["per_class"]["a"] == 0
    assert voc_evaluate({1: det([[0, 0, 10, 19]], [1], [0])}, g, CLASSES)["per_class"]["a"] == 100
    # the second detection's best GT (G1) is taken -> FP even though G2 (IoU .85) is free
    g2 = {1: gt([[0, 0, 10, 10], [1, 0, 11, 10]], [0, 0])}
    d2 = {1: det([[0, 0, 10, 10], [0.2, 0, 10.2, 10]], [.9, .8], [0, 0])}
    # TP, FP -> recall .5 .5, precision 1 .5: 11-point 6/11, all-point .5
    assert voc_evaluate(d2, g2, CLASSES)["per_class"]["a"] == pytest.approx(100 * 6 / 11)
    assert voc_evaluate(d2, g2, CLASSES, "voc10")["per_class"]["a"] == pytest.approx(50)


def test_voc_ap_details():
    assert voc_ap([0.3], [1.0], True) == pytest.approx(4 / 11)       # recall 0.3 reaches t = 0.3
    assert voc_ap([0.3], [1.0], False) == pytest.approx(0.3)
    assert voc_ap([], [], True) == 0.0
    assert voc_ap([0.5, 1.0], [0.5, 1.0], False) == pytest.approx(1.0)   # envelope takes the later precision


def dataset_from(gtmap):
    recs = [make_record(i, f"{i}.jpg", 100, 100, g["boxes"], g["labels"], g["difficult"]) for i, g in gtmap.items()]
    return DetectionDataset("voc", "/x", "test", CLASSES, recs)


def test_voc_evaluator_subset_and_errors():
    ds = dataset_from(GT)
    ev = VOCEvaluator(ds, "voc07")
    ev.process([1, 2], [DETS[1], DETS[2]])
    assert ev.evaluate()["mAP"] == pytest.approx(100 * 28 / 33)
    ev.reset()
    ev.process([1], [DETS[1]])                      # only image 1 evaluated: 1 positive, TP then FP
    assert ev.evaluate()["per_class"]["a"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="processed twice"):
        ev.process([1], [DETS[1]])
    with pytest.raises(ValueError, match="not in test"):
        ev.process([9], [DETS[1]])
    other = VOCEvaluator(ds)
    other.merge({2: DETS[2]})
    ev.merge(other.export())
    assert ev.evaluate()["mAP"] == pytest.approx(100 * 28 / 33)


def test_detections_file_round_trip_and_cli(tmp_path, capsys):
    root = str(tmp_path)
    write_voc(root, "2007", {
        "000001": (50, 50, [voc_object("dog", (1, 1, 10, 10)), voc_object("cat", (21, 21, 40, 40))]),
        "000002": (50, 50, [voc_object("dog", (11, 11, 30, 30)), voc_object("dog", (1, 1, 5, 5), difficult="1")]),
        "000003": (50, 50, [voc_object("cat", (5, 5, 45, 45))]),
    }, {"test": ["000001", "000002", "000003"]})
    ds = load_dataset("voc", root, "2007_test")
    dog, cat = ds.class_names.index("dog"), ds.class_names.index("cat")
    # perfect on 1 and 2, nothing on image 3 (which must still count)
    dets = [det([[0, 0, 10, 10], [20, 20, 40, 40]], [.9, .8], [dog, cat]), det([[10, 10, 30, 30]], [.7], [dog])]
    results = detections_to_results(ds, ["000001", "000002"], dets)
    assert results[0] == {"image_id": "000001", "category_id": "dog", "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.9}
    r = evaluate_results(ds, results, "voc07")
    assert r["per_class"]["dog"] == 100.0 and r["per_class"]["cat"] == pytest.approx(100 * 6 / 11)
    assert r["num_images"] == 3 and r["split"] == "2007_test"
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(results))
    assert main_tools(["evaluate", "--dataset", f"voc:{root}", "--split", "2007_test", "--detections",
                       str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metric"] == "voc07" and out["mAP"] == pytest.approx(r["mAP"])
    assert main_tools(["evaluate", "--dataset", f"voc:{root}", "--detections", str(path), "--metric",
                       "voc10"]) == 0
    assert json.loads(capsys.readouterr().out)["per_class"]["cat"] == pytest.approx(50.0)
    # COCO metric on VOC data: difficult boxes become crowd (ignored); perfect boxes on 1, 2
    c = COCOEvaluator(ds)
    c.process(["000001", "000002"], dets)
    assert c.evaluate()["per_class"]["dog"] == pytest.approx(100.0)
    # clear errors
    path.write_text(json.dumps([{"image_id": 1, "category_id": "dog", "bbox": [0, 0, 1, 1], "score": 1}]))
    assert main_tools(["evaluate", "--dataset", f"voc:{root}", "--detections", str(path)]) == 2
    assert "image_id 1 is not in 2007_test (VOC image ids are file stems, as strings)" in capsys.readouterr().err
    path.write_text(json.dumps([{"image_id": "000001", "category_id": "wolf", "bbox": [0, 0, 1, 1], "score": 1}]))
    assert main_tools(["evaluate", "--dataset", f"voc:{root}", "--detections", str(path)]) == 2
    assert "category_id 'wolf' is not a class name" in capsys.readouterr().err
    path.write_text("[{")
    assert main_tools(["evaluate", "--dataset", f"voc:{root}", "--detections", str(path)]) == 2
    assert "dets.json:1:3: invalid JSON" in capsys.readouterr().err


def test_targets_decoded_back_through_the_eval_pipeline_score_100(tmp_path):
    # data -> letterbox -> CenterNet targets -> boxes read off the target maps -> original image
    # coordinates (EvalMeta.to_original) -> VOC evaluator: every step must invert the previous one
    from nnabla_nas_detofa.data.loader import make_loader
    from nnabla_nas_detofa.data.synthetic import make_synthetic_voc
    from nnabla_nas_detofa.data.transforms import transform_boxes
    root = str(tmp_path)
    make_synthetic_voc(root, 2, 12, 96, seed=5)
    ld = make_loader(False, False, 5, root=root, train_split="synth_train", test_split="synth_val", input_size=64,
                     num_workers=2)
    ev = VOCEvaluator(ld.dataset, "voc10")
    n_boxes = 0
    for _, metas in ld.iterate_eval():
        for m in metas:
            r = m.record
            t = ld.targets(transform_boxes(r.boxes, m.affine), r.labels, r.ignore)
            c, ys, xs = np.nonzero(t.heatmap == 1.0)
            cx, cy = xs + t.reg[0, ys, xs], ys + t.reg[1, ys, xs]
            w, h = t.wh[0, ys, xs], t.wh[1, ys, xs]
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
            n_boxes += len(boxes)
            ev.process([m.image_id], [det(m.to_original(boxes, stride=4), np.ones(len(boxes)), c)])
    r = ev.evaluate()
    assert n_boxes > 12 and r["num_images"] == 12
    assert r["mAP"] == pytest.approx(100.0)
