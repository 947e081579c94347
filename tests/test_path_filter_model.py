"""Path filter model: tokens, positional encodings, NNabla graph vs numpy forward, files."""
import json
import random

import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig, PathFilterError, Tokenizer, sinusoid
from nnabla_nas_detofa.path_filter.model import count_parameters, default_vocabulary
from nnabla_nas_detofa.space.tokens import TokenError
from nnabla_nas_detofa.space import Buckets, SupernetConfig, get_space, mflops, space_buckets, tokenize, vocabulary

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64


def _archs(n, space="ofa", seed=0):
    rng = random.Random(seed)
    return [get_space(space).sample(rng) for _ in range(n)]


def _filter(seed=0, **kw):
    b = space_buckets(get_space("ofa"), CFG, SIZE)
    return PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=b, supernet=CFG, input_size=SIZE, **kw),
                      seed=seed)


def _perturb(flt, seed=0, scale=0.05):
    # move the weights away from initialisation so outputs depend on every part
    rng = np.random.RandomState(seed)
    flt.set_state({k: v + scale * rng.randn(*v.shape).astype(np.float32) for k, v in flt.state().items()})


def test_tokenizer_matches_tokenize():
    for space in ("ofa", "compofa"):
        tok = Tokenizer.from_space(get_space(space))
        archs = _archs(300, space, seed=1)
        ids = tok.ids(archs)
        assert ids.shape == (300, 19) and ids.dtype == np.int32
        for a, row in zip(archs, ids):
            assert [tok.vocab[i] for i in row] == tokenize(a)
    # dicts are accepted too
    a = _archs(1)[0]
    assert Tokenizer.from_space(get_space("ofa")).ids([a.to_dict()]).tolist() == \
        Tokenizer.from_space(get_space("ofa")).ids([a]).tolist()


def test_unknown_tokens_map_to_zero():
    tok = Tokenizer(vocabulary(get_space("ps1")))  # widths 1.0 only, expand 0.35 only
    a = {"d": [2, 0, 0, 0, 0], "e": [0.35, 0.2] + [0.35] * 16, "w": [2, 2, 1, 2, 2, 2]}
    row = tok.ids([a])[0]
    toks = tokenize(a)
    for t, i in zip(toks, row):
        if t in tok.vocab:
            assert tok.vocab[i] == t
        else:
            assert i == 0
    assert row[1] == 0 and row[2] == 0  # stage 1 (width 0.8) tokens are unknown to ps1
    with pytest.raises(TokenError, match="<unk>"):
        Tokenizer(["SC", "<unk>"])


def test_sinusoid_hand_values():
    pe = sinusoid([0, 1, 2], 4, 4)
    # P(l, 0) = sin(l), P(l, 1) = cos(l), P(l, 2) = sin(l / 10000^(2/4)) = sin(l / 100)
    expect = np.array([[np.sin(l), np.cos(l), np.sin(l / 100.0), np.cos(l / 100.0)] for l in (0, 1, 2)])
    np.testing.assert_allclose(pe, expect, rtol=0, atol=1e-12)


def test_positional_encodings_in_the_filter():
    f = _filter()
    assert f.pe.shape == (19, 128)
    layer = sinusoid(range(19), 128, 128)
    block = sinusoid([0] + [1] * 4 + [2] * 4 + [3] * 6 + [4] * 4, 128, 128)
    np.testing.assert_allclose(f.pe, layer + block, atol=1e-6)
    np.testing.assert_allclose(_filter(block_pe=False).pe, layer, atol=1e-6)
    lit = _filter(pe_norm="index").pe
    np.testing.assert_allclose(lit, sinusoid(range(19), 128, 18) + sinusoid(
        [0] + [1] * 4 + [2] * 4 + [3] * 6 + [4] * 4, 128, 4), atol=1e-6)
    with pytest.raises(PathFilterError, match="pe_norm"):
        _filter(pe_norm="x")


def test_model_shape_and_scope_isolation():
    import nnabla as nn
    before = set(nn.get_parameters(grad_only=False))
    f = _filter()
    assert set(nn.get_parameters(grad_only=False)) == before  # nothing in NNabla's global scope
    names = list(f.parameters())
    assert all(n.startswith("path_filter/") for n in names)
    assert sum("transformer_encode/src_self_attn" in n for n in names) == 3 * 8
    shapes = {n: tuple(v.shape) for n, v in f.parameters().items()}
    assert shapes["path_filter/token_embed/embed/W"] == (len(default_vocabulary()), 96)
    assert shapes["path_filter/bucket_embed/embed/W"] == (5, 32)
    assert shapes["path_filter/encoder0/transformer_encode/enc_affine1/affine/W"] == (128, 128)
    assert shapes["path_filter/fc2/affine/W"] == (128, 128)
    assert shapes["path_filter/out/affine/W"] == (128, 1)
    assert _filter(budget=False).parameters()["path_filter/bucket_embed/embed/W"].shape == (1, 32)
    assert count_parameters(f) > 300_000


@pytest.mark.parametrize("kw", [{}, {"budget": False}, {"block_pe": False}])
def test_numpy_forward_equals_nnabla_graph(kw):
    f = _filter(seed=3, **kw)
    _perturb(f, seed=1)
    archs = _archs(70, seed=2)
    flops = [mflops(a, CFG, SIZE) for a in archs]
    a = f.score(archs, flops, backend="nnabla", batch_size=32)  # 3 batches, last one padded
    b = f.score(archs, flops, backend="numpy", batch_size=13)
    c = f.score(archs, flops, backend="nnabla", batch_size=128)
    assert a.shape == (70,) and a.std() > 0.005
    np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(a, c, atol=2e-5)
    assert np.all((a > 0) & (a < 1))


def test_bucket_conditioning_switch():
    archs = _archs(20, seed=4)
    for budget in (True, False):
        f = _filter(seed=1, budget=budget)
        _perturb(f, seed=2)
        s0 = f.score(archs, bucket=[0] * 20)
        s4 = f.score(archs, bucket=[4] * 20)
        assert np.abs(s0 - s4).max() > 1e-4 if budget else np.array_equal(s0, s4)
    f = _filter()
    with pytest.raises(PathFilterError, match="bucket indices"):
        f.score(archs, bucket=[5] * 20)
    with pytest.raises(PathFilterError, match="2 bucket"):
        f.score(archs, bucket=[0, 1])


def test_flops_computed_when_missing():
    f = _filter(seed=2)
    _perturb(f)
    archs = _archs(10, seed=5)
    flops = [mflops(a, CFG, SIZE) for a in archs]
    np.testing.assert_array_equal(f.score(archs), f.score(archs, flops))
    np.testing.assert_array_equal(f.score(archs, flops), f.score(archs, bucket=f.config.buckets.indices(flops)))
    no_net = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=Buckets(1.0, 2.0)))
    with pytest.raises(PathFilterError, match="supernet"):
        no_net.score(archs)
    assert f.score([]).shape == (0,)
    with pytest.raises(PathFilterError, match="backend"):
        f.score(archs, flops, backend="torch")


def test_seeded_initialisation():
    a, b, c = _filter(seed=5).state(), _filter(seed=5).state(), _filter(seed=6).state()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)


def test_save_load_roundtrip(tmp_path):
    f = _filter(seed=4, block_pe=False)
    _perturb(f, seed=3)
    f.config.meta = {"note": "x"}
    h5 = str(tmp_path / "out" / "path_filter.h5")
    f.save(h5)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["path_filter.h5", "path_filter.json"]
    meta = json.loads((tmp_path / "out" / "path_filter.json").read_text())
    assert meta["block_pe"] is False and meta["input_size"] == SIZE and meta["supernet"]["width_mult"] == 0.125
    assert meta["buckets"]["n"] == 5 and meta["vocab"][0] == "<unk>"
    g = PathFilter.load(h5)
    assert g.config.block_pe is False and g.config.supernet == CFG and g.config.meta == {"note": "x"}
    assert g.config.buckets == f.config.buckets
    archs = _archs(40, seed=6)
    np.testing.assert_array_equal(f.score(archs), g.score(archs))
    # the h5 holds only the filter's parameters, under its scope
    import h5py
    with h5py.File(h5, "r") as hf:
        names = []
        hf.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    assert names and all(n.startswith("path_filter/") for n in names)
    assert len(names) == len(f.parameters())


def test_load_errors(tmp_path):
    f = _filter()
    h5 = str(tmp_path / "w.h5")
    with pytest.raises(PathFilterError, match="no such file"):
        PathFilter.load(h5)
    f.save(h5)
    jp = tmp_path / "w.json"
    good = jp.read_text()
    jp.write_text("{oops")
    with pytest.raises(PathFilterError, match="w.json:1:2: invalid JSON"):
        PathFilter.load(h5)
    jp.write_text(json.dumps({"format": "other"}))
    with pytest.raises(PathFilterError, match="not a path filter config"):
        PathFilter.load(h5)
    obj = json.loads(good)
    del obj["vocab"]
    jp.write_text(json.dumps(obj))
    with pytest.raises(PathFilterError, match="bad or missing entry"):
        PathFilter.load(h5)
    obj = json.loads(good)
    obj["vocab"] = obj["vocab"][:-1]  # weights no longer fit the config
    jp.write_text(json.dumps(obj))
    with pytest.raises(PathFilterError, match="token_embed.*shape"):
        PathFilter.load(h5)
    jp.write_text(good)
    (tmp_path / "w.h5").write_bytes(b"not an h5 file")
    with pytest.raises(PathFilterError, match="cannot read parameters"):
        PathFilter.load(h5)
    with pytest.raises(PathFilterError, match=".h5"):
        f.save(str(tmp_path / "w.bin"))


def test_copy_is_independent():
    f = _filter(seed=1)
    _perturb(f)
    g = f.copy()
    archs = _archs(5, seed=9)
    np.testing.assert_array_equal(f.score(archs), g.score(archs))
    _perturb(g, seed=4)
    assert not np.array_equal(f.score(archs), g.score(archs))
    g.config.meta["x"] = 1
    assert "x" not in f.config.meta
    with pytest.raises(PathFilterError, match="3 FLOPs values for 5 archs"):
        f.score(archs, flops=[1.0, 2.0, 3.0])
    with pytest.raises(PathFilterError, match="finite"):
        f.score(archs, flops=[1.0, 2.0, 3.0, 4.0, float("nan")])


def test_scoring_reuses_its_numpy_networks_and_follows_every_weight_change():
    flt = _filter(wide=True)
    _perturb(flt, 1)
    archs = _archs(12)
    fl = [mflops(a, CFG, SIZE) for a in archs]

    def fresh():  # an independent computation: a new numpy network and the NNabla graph
        ids, rows = flt.inputs(archs, fl)
        z = flt.numpy_net().forward(ids, rows).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-z))

    first = flt.score(archs, fl)
    nets = flt._numpy_nets()
    assert flt._numpy_nets()[0] is nets[0]  # built once, reused by every call
    assert np.allclose(first, fresh(), atol=1e-6)
    # set_state (as load / copy / training's checkpoint restore) gives new arrays: scores follow
    _perturb(flt, 2, scale=0.2)
    assert not np.allclose(flt.score(archs, fl), first, atol=1e-4)
    assert np.allclose(flt.score(archs, fl), fresh(), atol=1e-6)
    assert np.allclose(flt.score(archs, fl), flt.score(archs, fl, backend="nnabla"), atol=1e-5)
    # in-place updates (as NNabla's solvers make) show through the cached views without a refresh
    p = flt.parameters()["path_filter/wide/token/W"]
    view = p.d
    view += 0.3
    assert np.allclose(flt.score(archs, fl), fresh(), atol=1e-6)
    # a direct assignment needs refresh(), as documented
    p.d = np.zeros(p.shape, np.float32)
    flt.refresh()
    assert np.allclose(flt.score(archs, fl), fresh(), atol=1e-6)


def test_ensemble_member_set_state_refreshes_the_ensemble():
    members = [_filter(seed=s, wide=True) for s in (0, 1)]
    ens = PathFilter.ensemble_of(members)
    archs = _archs(8)
    fl = [mflops(a, CFG, SIZE) for a in archs]
    before = ens.score(archs, fl)
    m1 = ens.member(1)
    m1.set_state({k: v + 0.5 for k, v in m1.state().items()})
    after = ens.score(archs, fl)
    assert not np.allclose(before, after, atol=1e-4)
    assert np.allclose(after, ens.score(archs, fl, backend="nnabla"), atol=1e-5)
