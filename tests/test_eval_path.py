"""Per-path evaluation against an independent run of the extracted static network."""
import random

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.data.loader import DataLoader
from nnabla_nas_detofa.detection.decode import decode
from nnabla_nas_detofa.evaluation.path_eval import PathEvaluator
from nnabla_nas_detofa.evaluation.evaluators import make_evaluator
from nnabla_nas_detofa.nets.static import extract
from nnabla_nas_detofa.nets.supernet import DetOFASupernet


def loaders(root, bs=4):
    opts = dict(root=root, train_split="synth_train", test_split="synth_val", input_size=64, num_classes=5,
                num_workers=0, augment=False, shuffle=False)
    return DataLoader(True, True, bs, None, **opts), DataLoader(False, False, bs, None, **opts)


@pytest.fixture(scope="module")
def net():
    nn.seed(0)
    return DetOFASupernet(num_classes=5, width_mult=0.0625, divisor=1)


def test_validation_loss_and_detections_match_static_network(tiny_voc, net):
    arch = net.space.sample(random.Random(4))
    train, valid = loaders(tiny_voc)
    pe = PathEvaluator(net, train, valid, calib_batches=2)
    loss = pe.validation_loss(arch, n_batches=2)
    dets = pe.detections()            # same path, statistics just calibrated

    static = extract(net, arch)       # copies the calibrated statistics too
    static.apply(training=False)
    _, valid2 = loaders(tiny_voc)
    losses = []
    for _ in range(2):
        b = valid2.next()
        x = nn.Variable.from_numpy_array(b["inputs"][0])
        out = static(x)
        ls = static.loss(out, [nn.Variable.from_numpy_array(t) for t in b["targets"]])
        ls.forward()
        losses.append(float(ls.d))
    assert loss == pytest.approx(np.mean(losses), rel=1e-4)

    n_images = 0
    for images, metas in valid2.iterate_eval(batch_size=4):
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


def test_bn_recalibration_uses_every_calibration_batch(tiny_voc, net):
    train, valid = loaders(tiny_voc)
    pe = PathEvaluator(net, train, valid, calib_batches=3)
    assert pe.set_path(net.space.extreme(False)) == 12


def test_evaluate_scores_every_image_once(tiny_voc, net):
    train, valid = loaders(tiny_voc)
    pe = PathEvaluator(net, train, valid, calib_batches=1)
    m = pe.evaluate(net.space.extreme(True))
    assert m["metric"] == "voc07" and m["num_images"] == 8
    assert 0.0 <= m["mAP"] <= 100.0  # percent
    # the same detections through the evaluator API directly give the same number
    dets = pe.detections()
    ev = make_evaluator(valid.eval_dataset(), "voc07")
    ev.reset()
    ev.process(list(dets), [dets[i] for i in dets])
    assert ev.evaluate()["mAP"] == pytest.approx(m["mAP"])
