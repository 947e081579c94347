"""FLOPs-bounded pairwise loss and the quality metrics, against hand-worked cases."""
import json
import math

import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import kendall_tau, pair_targets, pairwise_hinge_loss, quality_report
from nnabla_nas_detofa.path_filter.loss import pairwise_hinge_loss_nn
from nnabla_nas_detofa.path_filter.quality import json_safe, weak_detection, weak_masks

S = [0.9, 0.2, 0.6, 0.5]
V = [0.1, 0.3, 0.2, 0.2]
BK = [0, 0, 1, 1]


def test_loss_hand_case():
    # bucket 0: (0,1) t=+1 g=0.7 -> 0.09 ; bucket 1: (2,3) tie -> t=+1, g=0.1 -> 0.81
    assert pairwise_hinge_loss(S, V, BK) == pytest.approx((0.09 + 0.81) / 2)
    # all pairs add (0,2) 0.49, (0,3) 0.36, (1,2) t=-1 g=-0.4 -> 0.36, (1,3) t=-1 g=-0.3 -> 0.49
    assert pairwise_hinge_loss(S, V, BK, flops_bounded=False) == pytest.approx(2.6 / 6)
    # the hinge: a pair ordered by more than the margin costs nothing, a wrong one quadratically
    assert pairwise_hinge_loss([2.5, 0.0], [0.1, 0.2], [0, 0]) == 0.0
    assert pairwise_hinge_loss([2.5, 0.0], [0.3, 0.2], [0, 0]) == pytest.approx(3.5 ** 2)
    assert math.isnan(pairwise_hinge_loss([0.1, 0.2], [0.1, 0.2], [0, 1]))


def test_pair_targets():
    t, m = pair_targets(V, BK)
    assert t.tolist() == [[1, 1, 1, 1], [-1, 1, -1, -1], [-1, 1, 1, 1], [-1, 1, 1, 1]]
    assert m.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    _, m_all = pair_targets(V, BK, flops_bounded=False)
    assert m_all.sum() == 6 and np.all(np.tril(m_all) == 0)


def test_nnabla_loss_and_gradient_match_numpy():
    import nnabla as nn
    rng = np.random.RandomState(0)
    n, pad = 9, 3
    s = rng.rand(n)
    v = rng.rand(n)
    b = rng.randint(0, 3, n)
    for fb in (True, False):
        t, m = pair_targets(v, b, fb)
        sv = nn.Variable((n + pad,), need_grad=True)
        sv.d = np.concatenate([s, rng.rand(pad)])  # padded rows carry no pair
        T = nn.Variable((n + pad, n + pad))
        W = nn.Variable((n + pad, n + pad))
        tt = np.zeros((n + pad, n + pad))
        ww = np.zeros((n + pad, n + pad))
        tt[:n, :n], ww[:n, :n] = t, m / m.sum()
        T.d, W.d = tt, ww
        loss = pairwise_hinge_loss_nn(sv, T, W)
        loss.forward()
        assert float(loss.d) == pytest.approx(pairwise_hinge_loss(s, v, b, fb), rel=1e-5)
        sv.grad.zero()
        loss.backward()
        eps = 1e-6
        num = [(pairwise_hinge_loss(s + eps * np.eye(n)[i], v, b, fb)
                - pairwise_hinge_loss(s - eps * np.eye(n)[i], v, b, fb)) / (2 * eps) for i in range(n)]
        np.testing.assert_allclose(sv.g[:n], num, atol=1e-4)
        assert np.all(sv.g[n:] == 0)


def test_kendall_tau_hand_and_scipy():
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    # tau-b with ties: x ties one pair; C=2, D=0, untied in x = 2, untied in y = 3 -> 2 / sqrt(6)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert math.isnan(kendall_tau([1], [2])) and math.isnan(kendall_tau([1, 1], [1, 2]))
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.RandomState(1)
    for n in (5, 50, 3000):
        x = rng.randint(0, 7, n).astype(float)  # many ties
        y = x + rng.randn(n) * 3
        y[: n // 3] = np.round(y[: n // 3])
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-10)


def test_weak_detection_hand_case():
    s = [0.1, 0.9, 0.8, 0.2, 0.4, 0.3]
    v = [0.5, 0.1, 0.4, 0.2, 0.3, 0.6]
    b = [0, 0, 0, 0, 1, 1]
    true, pred = weak_masks(s, v, b, 0.5)
    assert np.flatnonzero(true).tolist() == [0, 2, 5] and np.flatnonzero(pred).tolist() == [0, 3, 5]
    r = weak_detection(s, v, b, 0.5)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(4 / 6) and r["detected_fraction"] == pytest.approx(2 / 6)
    assert r["n_weak"] == 3
    # r = 0.25: k = floor(0.25 * 4 + 0.5) = 1 in bucket 0, floor(0.25 * 2 + 0.5) = 1 in bucket 1
    r = weak_detection(s, v, b, 0.25)
    assert r["n_weak"] == 2 and r["precision"] == 1.0 and r["accuracy"] == 1.0
    # a bucket too small for the ratio contributes no weak path
    true, _ = weak_masks([0.1, 0.2], [0.1, 0.2], [0, 1], 0.2)
    assert not true.any()


def test_quality_report_structure_and_baseline():
    rng = np.random.RandomState(0)
    n = 200
    b = rng.randint(0, 5, n)
    flops = b * 100 + rng.rand(n) * 100
    v = 5 - flops / 100 + rng.randn(n) * 0.05
    perfect = -v
    rep = quality_report(perfect, v, b, flops=flops)
    assert rep["n"] == n and sum(rep["bucket_sizes"].values()) == n
    assert rep["kendall_tau"] == pytest.approx(1.0) and rep["kendall_tau_within"] == pytest.approx(1.0)
    assert set(rep["weak"]) == {"0.2", "0.25", "0.3", "0.4"}
    for r in rep["weak"].values():
        assert r["precision"] == 1.0 and r["recall"] == 1.0 and r["accuracy"] == 1.0
    fo = rep["flops_only"]
    assert 0 < fo["kendall_tau_within"] < 1 and set(fo["kendall_tau_bucket"]) == set(rep["kendall_tau_bucket"])
    for k in rep["kendall_tau_bucket"]:
        idx = b == int(k)
        assert fo["kendall_tau_bucket"][k] == pytest.approx(kendall_tau(flops[idx], -v[idx]))
    assert quality_report(perfect, v, b, ratios=(0.1,))["weak"].keys() == {"0.1"}
    with pytest.raises(ValueError, match="ratio"):
        quality_report(perfect, v, b, ratios=(1.5,))
    with pytest.raises(ValueError, match="lengths"):
        quality_report(perfect[:3], v, b)
    json.dumps(json_safe({"a": float("nan"), "b": [1.0, float("inf")]}), allow_nan=False)
    assert json_safe({"a": float("nan")}) == {"a": None}
