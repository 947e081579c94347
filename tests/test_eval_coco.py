import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from test_data_fixtures import write_coco

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data import load_dataset
from nnabla_nas_detofa.evaluation import (COCOEvaluator, ResultsError, VOCEvaluator, coco_evaluate,
                                          detections_to_results, evaluate_results)

CATS = [(1, "person"), (18, "dog"), (62, "chair")]


def random_case(seed=0, n_images=12):
    rng = np.random.default_rng(seed)
    images, anns, results = [], [], []
    for i in range(n_images):
        iid = 100 + 7 * i
        w, h = int(rng.integers(200, 400)), int(rng.integers(150, 300))
        images.append((iid, f"{iid}.jpg", w, h))
        if i == 3:
            continue                                            # an image without annotations
        for _ in range(int(rng.integers(1, 6))):
            bw = float(rng.choice([12, 25, 60, 120])) * rng.uniform(0.7, 1.3)   # small / medium / large
            bh = min(bw * rng.uniform(0.5, 1.5), h - 1.0)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            cat = CATS[int(rng.integers(3))][0]
            anns.append((iid, cat, [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                         int(rng.random() < 0.08)))
            if rng.random() < 0.8:                              # a noisy detection of it
                j = rng.normal(0, 0.08, 4) * [bw, bh, bw, bh]
                results.append({"image_id": iid, "category_id": cat if rng.random() < 0.9 else CATS[0][0],
                                "bbox": [x + j[0], y + j[1], bw + j[2], bh + j[3]], "score": float(rng.random())})
        for _ in range(int(rng.integers(0, 3))):                # false positives
            results.append({"image_id": iid, "category_id": CATS[int(rng.integers(3))][0],
                            "bbox": [float(rng.uniform(0, w / 2)), float(rng.uniform(0, h / 2)), 30.0, 20.0],
                            "score": float(rng.random())})
    return images, anns, results


def direct_pycocotools(ann_file, results, img_ids=None):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, "bbox")
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.fixture
def case(tmp_path):
    images, anns, results = random_case()
    path, data = write_coco(str(tmp_path), "val2017", images, anns, CATS, write_images=False)
    return str(tmp_path), path, data, results


def test_matches_a_direct_pycocotools_run(case):
    root, path, data, results = case
    ev = direct_pycocotools(path, results)
    ours = coco_evaluate(data, results)
    for k, name in enumerate(("AP", "AP50", "AP75", "APs", "APm", "APl")):
        ref = ev.stats[k]
        assert (ours[name] is None) if ref < 0 else ours[name] == pytest.approx(100 * ref), name
    assert ours["AP"] > 10 and ours["AR100"] == pytest.approx(100 * ev.stats[8])
    # per class: same as pycocotools restricted to that category
    for cid, name in CATS:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(path)
            e = COCOeval(gt, gt.loadRes([dict(r) for r in results]), "bbox")
            e.params.catIds = [cid]
            e.evaluate()
            e.accumulate()
            e.summarize()
        assert ours["per_class"][name] == pytest.approx(100 * e.stats[0])
    assert len(ours["summary"]) == 12 and ours["summary"][0].startswith("Average Precision")


def test_subset_of_images(case):
    root, path, data, results = case
    subset = [100, 107, 121, 135]
    ev = direct_pycocotools(path, results, subset)
    ours = coco_evaluate(data, [r for r in results if r["image_id"] in subset], img_ids=subset)
    assert ours["AP"] == pytest.approx(100 * ev.stats[0]) and ours["num_images"] == 4
    assert ours["AP"] != pytest.approx(coco_evaluate(data, results)["AP"])


def test_no_predictions_gives_zero(case):
    _, _, data, _ = case
    r = coco_evaluate(data, [])
    assert r["AP"] == 0.0 and r["AP50"] == 0.0 and r["num_detections"] == 0
    assert all(v == 0.0 for v in r["per_class"].values())


def test_results_are_checked(case):
    _, _, data, results = case
    with pytest.raises(ResultsError, match=r"detections\[0\]: image_id 5 is not in the ground truth"):
        coco_evaluate(data, [dict(results[0], image_id=5)])
    with pytest.raises(ResultsError, match=r"category_id 2 is not in the ground truth"):
        coco_evaluate(data, [dict(results[0], category_id=2)])
    with pytest.raises(ResultsError, match=r"bbox \[1, 2\] is not 4 finite numbers"):
        coco_evaluate(data, [dict(results[0], bbox=[1, 2])])
    with pytest.raises(ResultsError, match="'score' is missing"):
        coco_evaluate(data, [{k: v for k, v in results[0].items() if k != "score"}])


def test_evaluator_and_cli_on_a_coco_folder(tmp_path, capsys):
    images, anns, results = random_case(seed=1, n_images=8)
    root = str(tmp_path)
    path, data = write_coco(root, "val2017", images, anns, CATS)     # writes image files too
    ds = load_dataset("coco", root, "val2017")
    ref = direct_pycocotools(path, results)
    # evaluator: detections as contiguous labels in original coordinates
    ev = COCOEvaluator(ds)
    by_img = {}
    for r in results:
        x, y, w, h = r["bbox"]
        d = by_img.setdefault(r["image_id"], ([], [], []))
        d[0].append([x, y, x + w, y + h])
        d[1].append(r["score"])
        d[2].append(ds.label_of(r["category_id"]))
    ids = [rec.image_id for rec in ds.records]
    ev.process(ids, [by_img.get(i, ([], [], [])) for i in ids])
    assert ev.evaluate()["AP"] == pytest.approx(100 * ref.stats[0])
    # only a subset processed -> params.imgIds = that subset
    ev.reset()
    ev.process(ids[:3], [by_img.get(i, ([], [], [])) for i in ids[:3]])
    sub = direct_pycocotools(path, [r for r in results if r["image_id"] in ids[:3]], ids[:3])
    assert ev.evaluate()["AP"] == pytest.approx(100 * sub.stats[0])
    # results written back in COCO format keep original ids
    back = detections_to_results(ds, ids, [by_img.get(i, ([], [], [])) for i in ids])
    assert {r["category_id"] for r in back} <= {1, 18, 62} and all(isinstance(r["image_id"], int) for r in back)
    assert evaluate_results(ds, back)["AP"] == pytest.approx(100 * ref.stats[0])
    # VOC metric on COCO data works (crowd boxes act as difficult)
    v = VOCEvaluator(ds, "voc10")
    v.process(ids, [by_img.get(i, ([], [], [])) for i in ids])
    assert 0 < v.evaluate()["mAP"] <= 100
    # command line
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(results))
    assert main_tools(["evaluate", "--dataset", f"coco:{root}", "--detections", str(det_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metric"] == "coco" and out["AP"] == pytest.approx(100 * ref.stats[0]) and "summary" not in out
    assert out["AP50"] == pytest.approx(100 * ref.stats[1]) and out["split"] == "val2017"
    assert main_tools(["evaluate", "--dataset", f"coco:{root}", "--detections", str(det_file), "--summary"]) == 0
    assert len(json.loads(capsys.readouterr().out)["summary"]) == 12
    det_file.write_text("[]")
    assert main_tools(["evaluate", "--dataset", f"coco:{root}", "--detections", str(det_file)]) == 0
    assert json.loads(capsys.readouterr().out)["AP"] == 0.0
