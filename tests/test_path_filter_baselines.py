"""Baseline rankers (FLOPs only, ridge, OFA-style MLP) against independent computations."""
import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import PathFilterError, SyntheticTask, evaluate, synthetic_pathset, train_path_filter
from nnabla_nas_detofa.path_filter.baselines import (FlopsRanker, MLPRanker, RidgeRanker, choice_features, features,
                                                     fit_baseline, fit_mlp, fit_ridge)
from nnabla_nas_detofa.path_filter.quality import kendall_tau_within
from nnabla_nas_detofa.space import Arch, SupernetConfig, get_space, space_buckets

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
SPACE = get_space("ofa")
BUCKETS = space_buckets(SPACE, CFG, SIZE)


def test_choice_features_one_hot_of_every_choice():
    a = Arch(d=[2, 0, 1, 2, 0], e=[0.2, 0.25, 0.35, 0.2] + [0.35] * 4 + [0.25] * 6 + [0.2] * 4,
             w=[0, 1, 2, 0, 1, 2])
    x = choice_features([a])[0]
    assert x.shape == (86,)
    expect = np.zeros(86)
    expect[1] = 1                                     # stem depth 2 (choices 0, 2)
    for j, w in enumerate([0, 1, 2, 0, 1, 2]):       # 6 width indices
        expect[2 + 3 * j + w] = 1
    for s, d in enumerate([0, 1, 2, 0]):             # 4 stage depths
        expect[20 + 3 * s + d] = 1
    active = [0, 1] + [4, 5, 6] + [8, 9, 10, 11, 12, 13] + [14, 15]
    ratios = a.e
    for k in active:                                 # expand ratios of active slots only
        expect[32 + 3 * k + [0.2, 0.25, 0.35].index(ratios[k])] = 1
    np.testing.assert_array_equal(x, expect)
    # the ratios of dropped slots do not matter
    b = a.replace(e=list(a.e[:2]) + [0.35, 0.35] + list(a.e[4:]))
    np.testing.assert_array_equal(choice_features([b])[0], x)
    f = features([a, b], [10.0, 20.0])
    assert f.shape == (2, 87) and f[1, -1] == pytest.approx(np.log(20.0))


def test_ridge_equals_an_independent_least_squares_solve():
    rng = np.random.RandomState(0)
    x = rng.randn(30, 4) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    y = x @ [0.3, -0.2, 1.0, 0.05] + 0.1 * rng.randn(30)
    alpha = 2.5
    r = RidgeRanker(alpha).fit_xy(x, y)
    # independent: augmented least squares [Z 1; sqrt(alpha) I 0] [w; b] = [y; 0] with Z standardised by hand
    z = (x - x.mean(0)) / x.std(0)
    a = np.vstack([np.hstack([z, np.ones((30, 1))]), np.hstack([np.sqrt(alpha) * np.eye(4), np.zeros((4, 1))])])
    sol = np.linalg.lstsq(a, np.concatenate([y, np.zeros(4)]), rcond=None)[0]
    np.testing.assert_allclose(r.coef, sol[:4], rtol=1e-10)
    assert r.intercept == pytest.approx(sol[4])
    xt = rng.randn(5, 4)
    np.testing.assert_allclose(r.predict_x(xt), ((xt - x.mean(0)) / x.std(0)) @ sol[:4] + sol[4], rtol=1e-10)


def test_fit_ridge_picks_alpha_on_validation_then_refits():
    rng = np.random.RandomState(1)
    x = rng.randn(80, 6)
    y = x @ rng.randn(6) + 0.5 * rng.randn(80)
    b = rng.randint(0, 2, 80)
    tr, va = np.arange(60), np.arange(60, 80)
    r, info = fit_ridge(x[tr], y[tr], b[tr], x[va], y[va], b[va], alphas=(0.1, 1000.0))
    taus = {a: kendall_tau_within(-RidgeRanker(a).fit_xy(x[tr], y[tr]).predict_x(x[va]), -y[va], b[va])
            for a in (0.1, 1000.0)}
    best = max(taus, key=lambda a: (taus[a], a))
    assert info["alpha"] == best and info["refit_on_train_and_val"]
    np.testing.assert_allclose(r.coef, RidgeRanker(best).fit_xy(x, y).coef)


def test_mlp_gradients_equal_finite_differences():
    rng = np.random.RandomState(2)
    m = MLPRanker((5, 4, 3), seed=0)
    m.init(3)
    m.weights = [w.astype(np.float64) for w in m.weights]
    m.biases = [b.astype(np.float64) for b in m.biases]
    z, y = rng.randn(9, 3), rng.randn(9)
    _, gw, gb = m.gradients(z, y)
    eps = 1e-6
    for group, grads in ((m.weights, gw), (m.biases, gb)):
        for p, g in zip(group, grads):
            num = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                old = p[idx]
                p[idx] = old + eps
                lp = np.mean((m.forward(z) - y) ** 2)
                p[idx] = old - eps
                lm = np.mean((m.forward(z) - y) ** 2)
                p[idx] = old
                num[idx] = (lp - lm) / (2 * eps)
            np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-9)


def test_mlp_learns_a_known_nonlinear_function():
    rng = np.random.RandomState(3)
    x = rng.uniform(-1, 1, (600, 3))
    y = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2]      # no linear model ranks this well
    b = np.zeros(600, int)
    tr, va, te = np.arange(400), np.arange(400, 500), np.arange(500, 600)
    m, info = fit_mlp(x[tr], y[tr], b[tr], x[va], y[va], b[va], hidden=(64, 64, 64), lr=3e-3, epochs=120,
                      patience=30, seed=0)
    tau_mlp = kendall_tau_within(-m.predict_x(x[te]), -y[te], b[te])
    lin = RidgeRanker(1e-3).fit_xy(x[tr], y[tr])
    tau_lin = kendall_tau_within(-lin.predict_x(x[te]), -y[te], b[te])
    assert tau_mlp > 0.85 and tau_mlp > tau_lin + 0.1, (tau_mlp, tau_lin)
    assert 1 <= info["best_epoch"] <= info["epochs_run"] <= 120
    assert MLPRanker().hidden == (400, 400, 400)  # the OFA predictor's shape by default
    # deterministic by seed
    m2, _ = fit_mlp(x[tr], y[tr], b[tr], x[va], y[va], b[va], hidden=(64, 64, 64), lr=3e-3, epochs=3, seed=0)
    m3, _ = fit_mlp(x[tr], y[tr], b[tr], x[va], y[va], b[va], hidden=(64, 64, 64), lr=3e-3, epochs=3, seed=0)
    np.testing.assert_array_equal(m2.predict_x(x[te]), m3.predict_x(x[te]))


def test_fit_baseline_uses_the_filters_split_and_scores_like_a_filter():
    ps = synthetic_pathset(SyntheticTask(0), SPACE, CFG, SIZE, 10, seed=1)
    r = fit_baseline("ridge", ps, buckets=BUCKETS, test_fraction=0.2, seed=4)
    f = train_path_filter(ps, buckets=BUCKETS, epochs=1, batch_size=8, test_fraction=0.2, seed=4, ensemble=1)
    for a, b in ((r.train_index, f.train_index), (r.val_index, f.val_index), (r.test_index, f.test_index)):
        np.testing.assert_array_equal(a, b)
    assert r.info["n_test"] == 10 and r.kind == "ridge"
    test = ps.subset(r.test_index)
    rep = evaluate(r.ranker, test, buckets=BUCKETS)
    np.testing.assert_allclose(r.ranker.score(test.archs, test.flops),
                               -r.ranker.predict_x(features(test.archs, test.flops)))
    assert rep["n"] == 10 and "flops_only" in rep
    fl = fit_baseline("flops", ps, buckets=BUCKETS)
    np.testing.assert_array_equal(fl.ranker.score(ps.archs, ps.flops), ps.flops)
    rep_f = evaluate(fl.ranker, ps, buckets=BUCKETS)
    assert rep_f["kendall_tau_within"] == rep_f["flops_only"]["kendall_tau_within"]
    with pytest.raises(PathFilterError, match="kind 'x'"):
        fit_baseline("x", ps)
    with pytest.raises(PathFilterError, match="need the FLOPs"):
        FlopsRanker().score(ps.archs)
