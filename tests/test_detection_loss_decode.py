"""CenterNet loss graph and numpy decoding against hand-worked numbers and a numpy reference."""

import math

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.detection import centernet_losses, decode, decode_image, focal_loss, masked_l1_loss


def focal_loss_np(logits, gt):
    p = np.clip(1.0 / (1.0 + np.exp(-logits.astype(np.float64))), 1e-4, 1 - 1e-4)
    pos = gt == 1
    pos_loss = np.log(p[pos]) * (1 - p[pos]) ** 2
    neg_loss = np.log(1 - p[~pos]) * p[~pos] ** 2 * (1 - gt[~pos]) ** 4
    return -(pos_loss.sum() + neg_loss.sum()) / max(pos.sum(), 1)


def l1_np(pred, gt, mask):
    # CenterNet's RegL1Loss: the mask expanded to both channels counts 2 values per object
    return (np.abs(pred - gt) * mask).sum() / max(2 * mask.sum(), 1)


def run(fn, *arrays):
    y = fn(*[nn.Variable.from_numpy_array(np.asarray(a, np.float32)) for a in arrays])
    y.forward()
    return float(y.d)


def test_focal_loss_hand_worked_2x2():
    # p = sigmoid(logits) = [[0.5, 0.75], [0.25, 0.5]]; one positive at (0, 0).
    logits = np.array([0.0, math.log(3), -math.log(3), 0.0]).reshape(1, 1, 2, 2)
    gt = np.array([1.0, 0.5, 0.0, 0.0]).reshape(1, 1, 2, 2)
    # positive: -log(.5) * .5^2;  negatives: -log(.25) * .75^2 * .5^4, -log(.75) * .25^2, -log(.5) * .5^2
    by_hand = 0.25 * math.log(2) + 0.5625 * 0.0625 * math.log(4) + 0.0625 * math.log(4 / 3) + 0.25 * math.log(2)
    assert by_hand == pytest.approx(0.4132906, abs=1e-6)
    assert run(focal_loss, logits, gt) == pytest.approx(by_hand, rel=1e-5)
    assert focal_loss_np(logits, gt) == pytest.approx(by_hand, rel=1e-9)


def test_focal_loss_clips_and_handles_no_positive():
    logits = np.array([40.0, -40.0, 0.0, 3.0]).reshape(1, 1, 2, 2)
    gt = np.array([0.0, 1.0, 0.2, 0.0]).reshape(1, 1, 2, 2)
    # clipped: p = 1-1e-4 at a negative, 1e-4 at the positive
    assert run(focal_loss, logits, gt) == pytest.approx(focal_loss_np(logits, gt), rel=1e-4)
    assert math.isfinite(run(focal_loss, logits, gt))
    none = np.zeros((1, 1, 2, 2))
    assert run(focal_loss, logits, none) == pytest.approx(focal_loss_np(logits, none), rel=1e-4)  # / max(0, 1)


def test_focal_loss_random_batch_against_numpy():
    rng = np.random.RandomState(0)
    logits = rng.normal(0, 3, (2, 3, 8, 8))
    gt = rng.uniform(0, 0.99, (2, 3, 8, 8))
    gt[0, 1, 2, 3] = gt[1, 2, 5, 5] = gt[1, 0, 0, 7] = 1.0
    assert run(focal_loss, logits, gt) == pytest.approx(focal_loss_np(logits, gt), rel=1e-4)


def test_l1_is_the_mean_over_both_values_of_each_object():
    pred = np.zeros((1, 2, 2, 2))
    gt = np.zeros((1, 2, 2, 2))
    mask = np.zeros((1, 1, 2, 2))
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = 1
    gt[0, :, 0, 0] = (1.0, 2.0)     # object 1: |0-1| + |0-2| = 3
    gt[0, :, 1, 1] = (0.5, -0.5)    # object 2: 0.5 + 0.5 = 1
    gt[0, :, 0, 1] = (9.0, 9.0)     # not an object centre: ignored
    assert run(masked_l1_loss, pred, gt, mask) == pytest.approx((3 + 1) / 4)  # 2 objects x 2 values
    assert run(masked_l1_loss, pred, gt, np.zeros_like(mask)) == 0.0


def test_centernet_losses_combination_and_gradients():
    rng = np.random.RandomState(1)
    hm_l, wh, reg = rng.normal(size=(2, 4, 8, 8)), rng.normal(2, 1, (2, 2, 8, 8)), rng.uniform(0, 1, (2, 2, 8, 8))
    hm_t = rng.uniform(0, 0.9, (2, 4, 8, 8))
    mask = np.zeros((2, 1, 8, 8))
    for n, c, y, x in ((0, 1, 2, 3), (0, 3, 6, 1), (1, 0, 4, 4)):
        hm_t[n, c, y, x] = 1.0
        mask[n, 0, y, x] = 1
    wh_t, reg_t = rng.uniform(1, 5, (2, 2, 8, 8)), rng.uniform(0, 1, (2, 2, 8, 8))
    outs = [nn.Variable.from_numpy_array(a.astype(np.float32), need_grad=True) for a in (hm_l, wh, reg)]
    tgts = [nn.Variable.from_numpy_array(a.astype(np.float32)) for a in (hm_t, wh_t, reg_t, mask)]
    terms = centernet_losses(outs, tgts)
    assert list(terms) == ["loss", "hm_loss", "wh_loss", "off_loss"]
    for t in terms.values():
        t.forward()
    assert float(terms["hm_loss"].d) == pytest.approx(focal_loss_np(hm_l, hm_t), rel=1e-4)
    assert float(terms["wh_loss"].d) == pytest.approx(l1_np(wh, wh_t, mask), rel=1e-5)
    assert float(terms["off_loss"].d) == pytest.approx(l1_np(reg, reg_t, mask), rel=1e-5)
    total = focal_loss_np(hm_l, hm_t) + 0.1 * l1_np(wh, wh_t, mask) + l1_np(reg, reg_t, mask)
    assert float(terms["loss"].d) == pytest.approx(total, rel=1e-4)
    weighted = centernet_losses(outs, tgts, [2.0, 0.0, 0.5])["loss"]
    weighted.forward()
    assert float(weighted.d) == pytest.approx(2 * focal_loss_np(hm_l, hm_t) + 0.5 * l1_np(reg, reg_t, mask), rel=1e-4)
    for o in outs:
        o.grad.zero()
    terms["loss"].backward()
    # size gradient: 0.1 * sign(pred - gt) / (3 objects x 2 values) at centres, 0 elsewhere
    expect = 0.1 * np.sign(wh - wh_t) * mask / 6
    np.testing.assert_allclose(outs[1].g, expect, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        centernet_losses(outs, tgts[:3])
    with pytest.raises(ValueError):
        centernet_losses(outs, [tgts[0], tgts[1], tgts[2], nn.Variable((2, 2, 8, 8))])


def logit(p):
    return math.log(p / (1 - p))


def test_decode_hand_built_heatmap():
    c, h, w = 2, 6, 8
    hm = np.full((c, h, w), -10.0, np.float32)
    hm[0, 2, 3] = logit(0.9)          # peak
    hm[0, 2, 4] = logit(0.8)          # its neighbour: suppressed
    hm[0, 4, 6] = logit(0.6)          # second peak, not adjacent
    hm[1, 2, 4] = logit(0.7)          # other class, same place as a suppressed one: a peak of its own
    hm[1, 0, 0] = logit(0.3)          # corner peak (border padding must not hide it)
    wh = np.zeros((2, h, w), np.float32)
    reg = np.zeros((2, h, w), np.float32)
    wh[:, 2, 3], reg[:, 2, 3] = (4.0, 2.0), (0.25, 0.5)
    wh[:, 4, 6], reg[:, 4, 6] = (2.0, 6.0), (0.0, 0.75)
    wh[:, 2, 4], reg[:, 2, 4] = (1.0, 1.0), (0.5, 0.5)
    wh[:, 0, 0], reg[:, 0, 0] = (2.0, 2.0), (0.1, 0.2)
    boxes, scores, classes = decode_image(hm, wh, reg, k=10, threshold=0.01)
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.6, 0.3], rtol=1e-5)
    assert classes.tolist() == [0, 1, 0, 1]
    # centre (x + off) * 4, half size wh / 2 * 4
    expect = np.array([[(3.25 - 2) * 4, (2.5 - 1) * 4, (3.25 + 2) * 4, (2.5 + 1) * 4],
                       [(4.5 - 0.5) * 4, (2.5 - 0.5) * 4, (4.5 + 0.5) * 4, (2.5 + 0.5) * 4],
                       [(6.0 - 1) * 4, (4.75 - 3) * 4, (6.0 + 1) * 4, (4.75 + 3) * 4],
                       [(0.1 - 1) * 4, (0.2 - 1) * 4, (0.1 + 1) * 4, (0.2 + 1) * 4]])
    np.testing.assert_allclose(boxes, expect, rtol=1e-5, atol=1e-5)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and classes.dtype == np.int64
    top2 = decode_image(hm, wh, reg, k=2)
    assert top2[0].shape == (2, 4) and top2[2].tolist() == [0, 1]
    thr = decode_image(hm, wh, reg, k=10, threshold=0.5)
    assert thr[2].tolist() == [0, 1, 0]
    # Without a threshold, k=10 is filled after the 4 peaks by flat background: a pixel equal to all
    # its neighbours is a local maximum (as in CenterNet), the first ones in class, row, column order.
    b, s, cl = decode_image(hm, wh, reg, k=10)
    assert len(s) == 10 and np.allclose(s[4:], 1 / (1 + math.exp(10)))
    assert cl[4:].tolist() == [0] * 6
    np.testing.assert_allclose(b[4], expect[3], rtol=1e-5)  # class 0 at (0, 0): the corner's wh and reg
    flat = np.zeros((1, 2, 2), np.float32)
    b, s, cl = decode_image(flat, np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), k=100)
    assert len(s) == 4 and np.allclose(s, 0.5)


def test_decode_batch():
    rng = np.random.RandomState(0)
    hm, wh, reg = rng.normal(size=(3, 2, 4, 4)), rng.uniform(0, 3, (3, 2, 4, 4)), rng.uniform(0, 1, (3, 2, 4, 4))
    out = decode(hm, wh, reg, k=5)
    assert len(out) == 3
    for i, (b, s, c) in enumerate(out):
        ref = decode_image(hm[i], wh[i], reg[i], k=5)
        assert np.array_equal(b, ref[0]) and np.array_equal(s, ref[1]) and np.array_equal(c, ref[2])
        assert len(s) <= 5 and np.all(np.diff(s) <= 0)
    with pytest.raises(ValueError):
        decode(hm[0], wh[0], reg[0])
