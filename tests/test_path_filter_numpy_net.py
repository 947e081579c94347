"""The numpy network against the NNabla graph: forward, gradients (vs backward()), ensembles, files."""
import json
import random

import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig, PathFilterError, pair_targets, pairwise_hinge_loss
from nnabla_nas_detofa.path_filter.loss import pairwise_hinge_loss_nn
from nnabla_nas_detofa.path_filter.baselines import choice_features
from nnabla_nas_detofa.path_filter.model import default_vocabulary
from nnabla_nas_detofa.path_filter.numpy_net import choice_map, pair_loss_grad
from nnabla_nas_detofa.space import Buckets, Tokenizer, get_space


def _filter(seed=1, **kw):
    f = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=Buckets(1.0, 2.0), **kw), seed=seed)
    rng = np.random.RandomState(seed)
    f.set_state({k: v + 0.05 * rng.randn(*v.shape).astype(np.float32) for k, v in f.state().items()})
    return f


def _archs(n, seed=0):
    rng = random.Random(seed)
    return [get_space("ofa").sample(rng) for _ in range(n)]


@pytest.mark.parametrize("kw", [{"wide": True}, {"wide": False, "budget": False}])
def test_numpy_gradients_equal_nnabla_backward(kw):
    import nnabla as nn
    f = _filter(**kw)
    rng = np.random.RandomState(0)
    n = 12
    ids = f.tokenizer.ids(_archs(n))
    rows = rng.randint(0, f.config.n_bucket_rows, n).astype(np.int32)
    v, b = rng.rand(n), rng.randint(0, 2, n)
    t, m = pair_targets(v, b)
    tok, bkt = nn.Variable((n, 19)), nn.Variable((n,))
    tok.d, bkt.d = ids, rows
    loss = pairwise_hinge_loss_nn(f.graph(tok, bkt), nn.Variable.from_numpy_array(t),
                                  nn.Variable.from_numpy_array(m / m.sum()))
    loss.forward()
    for p in f.parameters().values():
        p.grad.zero()
    loss.backward()
    net = f.numpy_net()
    z, cache = net.forward(ids, rows, keep=True)
    s = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(s, f.score_ids(ids, rows, backend="nnabla"), atol=2e-6)
    value, ds = pair_loss_grad(s, t, m / m.sum())
    assert value == pytest.approx(float(loss.d), rel=1e-5)
    grads = net.backward(cache, ds * s * (1 - s))
    params = f.parameters()
    assert set(grads) == {k[len("path_filter/"):] for k in params}
    scale = max(float(np.abs(p.g).max()) for p in params.values())
    for k, p in params.items():
        g = grads[k[len("path_filter/"):]]
        assert g.shape == tuple(p.shape), k
        # absolute tolerance on the gradient scale: the key biases' true gradient is 0 (softmax is
        # invariant to them) and both sides hold rounding noise there
        np.testing.assert_allclose(g, p.g, rtol=2e-3, atol=2e-5 * scale, err_msg=k)
    if kw["wide"]:
        assert np.abs(grads["wide/token/W"]).max() > 0 and np.abs(grads["wide/choice/W"]).max() > 0


def test_pair_loss_grad_matches_loss_and_finite_differences():
    rng = np.random.RandomState(3)
    s, v, b = rng.randn(7), rng.rand(7), rng.randint(0, 2, 7)
    t, m = pair_targets(v, b)
    value, g = pair_loss_grad(s, t, m / m.sum())
    assert value == pytest.approx(pairwise_hinge_loss(s, v, b))
    eps = 1e-6
    num = [(pairwise_hinge_loss(s + eps * np.eye(7)[i], v, b) - pairwise_hinge_loss(s - eps * np.eye(7)[i], v, b))
           / (2 * eps) for i in range(7)]
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("space", ["ofa", "compofa", "ps3"])
def test_choice_map_gives_the_one_hot_choices_from_the_tokens(space):
    vocab = default_vocabulary(get_space(space))
    tok = Tokenizer(vocab)
    a, c0 = choice_map(tuple(vocab))
    rng = random.Random(5)
    archs = [get_space(space).sample(rng) for _ in range(200)] + [get_space(space).extreme(b) for b in (0, 1)]
    ids = tok.ids(archs)
    onehot = np.zeros((len(archs), 19 * len(vocab)))
    for p in range(19):
        onehot[np.arange(len(archs)), p * len(vocab) + ids[:, p]] = 1
    np.testing.assert_array_equal(onehot @ a + c0, choice_features(archs))


def test_wide_head_is_linear_in_token_and_choice_one_hots():
    f = _filter(wide=True)
    archs = _archs(6, seed=2)
    ids = f.tokenizer.ids(archs)
    rows = np.zeros(6, np.int32)
    state = f.state()
    w_tok = np.zeros_like(state["path_filter/wide/token/W"])
    w_ch = np.zeros_like(state["path_filter/wide/choice/W"])
    state["path_filter/wide/token/W"], state["path_filter/wide/choice/W"] = w_tok, w_ch
    f.set_state(state)
    before = f.numpy_net().forward(ids, rows)
    w_tok[3 * len(f.config.vocab) + ids[0, 3], 0] = 0.7  # the token of path 0 at position 3
    w_ch[:, 0] = np.linspace(-1, 1, len(w_ch))
    f.set_state(state)
    after = f.numpy_net().forward(ids, rows)
    expect = before + 0.7 * (ids[:, 3] == ids[0, 3]) + choice_features(archs) @ w_ch[:, 0]
    np.testing.assert_allclose(after, expect, atol=1e-5)
    np.testing.assert_allclose(f.score_ids(ids, rows, backend="nnabla"), 1 / (1 + np.exp(-after)), atol=1e-6)
    assert f.parameters()["path_filter/wide/token/W"].shape == (19 * len(f.config.vocab), 1)
    assert f.parameters()["path_filter/wide/choice/W"].shape == (86, 1)
    assert not any("wide" in k for k in _filter(wide=False).parameters())


def test_ensemble_averages_member_logits_and_round_trips(tmp_path):
    a, b = _filter(seed=1, wide=True), _filter(seed=2, wide=True)
    ens = PathFilter.ensemble_of([a, b])
    assert ens.n_members == 2 and ens.config.n_members == 2
    names = list(ens.parameters())
    assert all(n.startswith("path_filter/") for n in names) and len(names) == 2 * len(a.parameters())
    archs = _archs(30, seed=4)
    flops = np.linspace(1.0, 2.0, 30)
    za = a.logits_ids(*a.inputs(archs, flops))
    zb = b.logits_ids(*b.inputs(archs, flops))
    np.testing.assert_allclose(ens.logits_ids(*ens.inputs(archs, flops)), (za + zb) / 2, rtol=1e-6)
    s = ens.score(archs, flops)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-(za + zb) / 2)), rtol=1e-6)
    np.testing.assert_allclose(ens.score(archs, flops, backend="nnabla", batch_size=16), s, atol=2e-5)
    # a member view shares the ensemble's parameters
    m1 = ens.member(1)
    np.testing.assert_allclose(m1.logits_ids(*m1.inputs(archs, flops)), zb, rtol=1e-6)
    h5 = str(tmp_path / "ens.h5")
    ens.save(h5)
    g = PathFilter.load(h5)
    assert g.n_members == 2 and json.loads((tmp_path / "ens.json").read_text())["n_members"] == 2
    np.testing.assert_array_equal(g.score(archs, flops), s)
    with pytest.raises(PathFilterError, match="another configuration"):
        PathFilter.ensemble_of([a, _filter(wide=False)])
    with pytest.raises(PathFilterError, match="member 2"):
        ens.member(2)
    with pytest.raises(PathFilterError, match="numpy_net"):
        ens.numpy_net()


def test_version_1_files_load_as_one_network_without_wide_head(tmp_path):
    f = _filter(wide=False)
    h5 = str(tmp_path / "old.h5")
    f.save(h5)
    jp = tmp_path / "old.json"
    obj = json.loads(jp.read_text())
    assert obj["version"] == 2
    del obj["wide"], obj["n_members"]
    obj["version"] = 1
    jp.write_text(json.dumps(obj))
    g = PathFilter.load(h5)
    assert g.config.wide is False and g.n_members == 1
    archs = _archs(8)
    np.testing.assert_array_equal(g.score(archs, np.ones(8)), f.score(archs, np.ones(8)))
    obj["version"] = 3
    jp.write_text(json.dumps(obj))
    with pytest.raises(PathFilterError, match="version 3 not supported"):
        PathFilter.load(h5)
