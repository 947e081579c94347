"""Per-path measurement: a function of the path, the weights and the data alone, checked against an
independent run of the extracted static network."""
import json
import random

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.data.loader import DataLoader
from nnabla_nas_detofa.data.records import DataError
from nnabla_nas_detofa.detection.decode import decode
from nnabla_nas_detofa.evaluation.evaluators import make_evaluator
from nnabla_nas_detofa.evaluation.path_eval import PathEvaluator, inference_context, measurement_sets
from nnabla_nas_detofa.nets.static import extract
from nnabla_nas_detofa.nets.supernet import DetOFASupernet


def loaders(root, bs=4, augment=False):
    opts = dict(root=root, train_split="synth_train", test_split="synth_val", input_size=64, num_classes=5,
                num_workers=0, augment=augment)
    return DataLoader(False, True, bs, None, **opts), DataLoader(False, False, bs, None, **opts)


@pytest.fixture(scope="module")
def net():
    nn.seed(0)
    return DetOFASupernet(num_classes=5, width_mult=0.0625, divisor=1)


def evaluator(net, root, tmp_path, bs=3, calib_images=10, valid_images=0, seed=0):
    train, valid = loaders(root, augment=True)   # augmentation must not reach the measurement sets
    calib, vset = measurement_sets(train, valid, str(tmp_path), calib_images, valid_images, bs, seed)
    return PathEvaluator(net, calib, vset), train, valid


def bn_state(net):
    return [(bn.mean.d.copy(), bn.var.d.copy()) for bn in net.elastic_bns()]


def test_loss_and_detections_match_the_static_network(tiny_voc, net, tmp_path):
    arch = net.space.sample(random.Random(4))
    pe, train, valid = evaluator(net, tiny_voc, tmp_path, bs=3)
    loss = pe.measure(arch)
    with pe.path(arch):
        static = extract(net, arch)       # the statistics just re-calibrated travel with it
    static.apply(training=False)
    # independent: one batch holding all 8 validation images, through the static network
    images, targets = [], []
    for i in range(len(valid.dataset)):
        img, tg, _ = valid.loader.load_sample(i, None)
        images.append(img)
        targets.append(tg)
    x = nn.Variable.from_numpy_array(np.stack(images))
    out = static(x)
    terms = static.metrics(out, [nn.Variable.from_numpy_array(np.stack([t[j] for t in targets])) for j in range(4)])
    nn.forward_all(list(terms.values()))
    for k in ("loss", "hm_loss", "wh_loss", "off_loss"):
        assert loss[k] == pytest.approx(float(terms[k].d), rel=1e-4), k

    dets = pe.detections(valid, arch=arch)
    n_images = 0
    for images, metas in valid.iterate_eval(batch_size=4):
        x = nn.Variable.from_numpy_array(images)
        out = static(x)
        nn.forward_all(out)
        for meta, (boxes, scores, labels) in zip(metas, decode(out[0].d, out[1].d, out[2].d, k=100)):
            got = dets[meta.image_id]
            np.testing.assert_allclose(got["scores"], scores, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(got["boxes"], meta.to_original(boxes), rtol=1e-4, atol=1e-3)
            assert np.array_equal(got["labels"], labels)
            n_images += 1
    assert n_images == len(dets) == 8


def test_same_path_same_label_whatever_was_measured_before(tiny_voc, net, tmp_path):
    pe, _, _ = evaluator(net, tiny_voc, tmp_path)
    rng = random.Random(7)
    arch = net.space.sample(rng)
    first = pe.validation_loss(arch)
    for _ in range(3):
        pe.validation_loss(net.space.sample(rng))
    pe.validation_loss(net.space.extreme(False))
    assert pe.validation_loss(arch) == pytest.approx(first, abs=1e-6, rel=0)
    # a fresh evaluator over the same stored sets agrees too
    pe2, _, _ = evaluator(net, tiny_voc, tmp_path)
    assert pe2.validation_loss(arch) == pytest.approx(first, abs=1e-6, rel=0)


def test_measuring_leaves_the_network_as_it_found_it(tiny_voc, net, tmp_path):
    pe, _, _ = evaluator(net, tiny_voc, tmp_path)
    start = net.space.extreme(True)
    net.set_arch(start)
    net.apply(training=True)
    before = bn_state(net)
    pe.validation_loss(net.space.sample(random.Random(1)))
    assert net.arch == start and net.training
    assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(before, bn_state(net)))
    net.apply(training=False)
    with inference_context(net):
        net.set_arch(net.space.extreme(False))
        net.apply(training=True)
    assert net.arch == start and not net.training


def test_loss_does_not_depend_on_the_batch_size(tiny_voc, net, tmp_path):
    arch = net.space.sample(random.Random(11))
    train, valid = loaders(tiny_voc)
    # same calibration batches (size 5), validation in batches of 3 (last one partial) or 8
    calib, v3 = measurement_sets(train, valid, str(tmp_path / "a"), 10, 0, 5, 0)
    _, v8 = measurement_sets(train, valid, str(tmp_path / "b"), 10, 0, 8, 0)
    v8.batch_size = 8
    l3 = PathEvaluator(net, calib, v3).measure(arch)
    l8 = PathEvaluator(net, calib, v8).measure(arch)
    for k in l3:
        assert l3[k] == pytest.approx(l8[k], rel=1e-5)


def test_calibration_uses_exactly_the_stored_images(tiny_voc, net, tmp_path):
    pe, train, _ = evaluator(net, tiny_voc, tmp_path, calib_images=10)
    stored = json.load(open(tmp_path / "measurement_sets.json"))
    assert len(stored["calib_ids"]) == 10 and len(set(stored["calib_ids"])) == 10
    assert stored["calib_ids"] == pe.calib.image_ids
    assert len(stored["valid_ids"]) == 8
    arch = net.space.sample(random.Random(3))
    with pe.path(arch):
        got = bn_state(net)
    # independent: re-calibrate directly on the same 10 letterboxed images, batches of 3
    recs = {r.image_id: r for r in train.dataset.records}
    imgs = [train.loader._load(recs[i], None, with_targets=False)[0] for i in stored["calib_ids"]]
    batches = [np.stack(imgs[i:i + 3]) for i in range(0, 10, 3)]
    snap = net.snapshot()
    net.set_arch(arch)
    assert net.recalibrate_bn(batches) == 10
    want = bn_state(net)
    net.restore(snap)
    for (a, b), (c, d) in zip(got, want):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b, d, rtol=1e-5, atol=1e-6)


def test_stored_sets_are_reused_and_guarded(tiny_voc, tmp_path):
    train, valid = loaders(tiny_voc)
    a, va = measurement_sets(train, valid, str(tmp_path), 6, 5, 4, seed=3)
    b, vb = measurement_sets(train, valid, str(tmp_path), 6, 5, 4, seed=3)
    assert a.image_ids == b.image_ids and va.image_ids == vb.image_ids and len(va) == 5
    c, _ = measurement_sets(train, valid, None, 6, 5, 4, seed=4)
    assert c.image_ids != a.image_ids     # another seed draws other images
    with pytest.raises(DataError, match="other measurement sets"):
        measurement_sets(train, valid, str(tmp_path), 7, 5, 4, seed=3)
    path = tmp_path / "measurement_sets.json"
    obj = json.load(open(path))
    obj["calib_ids"][0] = "no-such-image"
    path.write_text(json.dumps(obj))
    with pytest.raises(DataError, match="no-such-image"):
        measurement_sets(train, valid, str(tmp_path), 6, 5, 4, seed=3)


def test_evaluate_scores_every_image_once(tiny_voc, net, tmp_path):
    pe, _, valid = evaluator(net, tiny_voc, tmp_path)
    arch = net.space.extreme(True)
    m = pe.evaluate(valid, arch=arch)
    assert m["metric"] == "voc07" and m["num_images"] == 8
    assert 0.0 <= m["mAP"] <= 100.0  # percent
    dets = pe.detections(valid, arch=arch)
    ev = make_evaluator(valid.eval_dataset(), "voc07")
    ev.reset()
    ev.process(list(dets), [dets[i] for i in dets])
    assert ev.evaluate()["mAP"] == pytest.approx(m["mAP"])
    assert pe.evaluate(valid, arch=arch)["mAP"] == m["mAP"]   # and again: the same number
