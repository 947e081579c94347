"""Elastic layers against numpy: sliced conv / deconv / BatchNorm, running statistics, calibration."""

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

from nnabla_nas_detofa.nets.elastic import BNStatistics, ElasticBN, ElasticConv, ElasticDeconv, Param


def conv_np(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    y = np.zeros((n, o, ho, wo))
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, :, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, ky, kx])
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def deconv_np(x, w, stride, pad):
    """Transposed convolution as a scatter: every input pixel adds the kernel times its value."""
    n, c, h, wd = x.shape
    _, o, k, _ = w.shape
    full = np.zeros((n, o, (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w)
    ho, wo = (h - 1) * stride + k - 2 * pad, (wd - 1) * stride + k - 2 * pad
    return full[:, :, pad:pad + ho, pad:pad + wo]


def randomize(params, rng):
    for key, p in params.items():
        v = rng.uniform(0.5, 2.0, p.shape) if key.endswith("var") else rng.normal(0, 1, p.shape)
        p.d = v.astype(np.float32)


def test_param_stays_out_of_global_scope():
    before = len(nn.get_parameters(grad_only=False))
    p = Param((3, 4), initializer=np.ones((3, 4), np.float32))
    conv = ElasticConv(4, 5, 3, with_bias=True)
    assert len(nn.get_parameters(grad_only=False)) == before
    assert p.shape == (3, 4) and np.all(p.d == 1)
    assert list(conv.get_parameters()) == ["W", "b"]


@pytest.mark.parametrize("stride,cin,cout", [(1, 3, 5), (2, 6, 8), (2, 2, 1)])
def test_elastic_conv_uses_leading_slice(stride, cin, cout):
    rng = np.random.RandomState(stride + cin)
    conv = ElasticConv(6, 8, 3, stride=stride, with_bias=True)
    randomize(conv.get_parameters(), rng)
    x = nn.Variable((2, cin, 7, 6), need_grad=True)
    x.d = rng.normal(size=x.shape)
    y = conv(x, out_channels=cout)
    g = rng.normal(size=y.shape)
    loss = F.sum(y * nn.Variable.from_numpy_array(g))
    loss.forward()
    for p in conv.get_parameters().values():
        p.grad.zero()
    loss.backward()
    w, b = conv.W.d[:cout, :cin], conv.b.d[:cout]
    np.testing.assert_allclose(y.d, conv_np(x.d, w, b, stride, 1), rtol=1e-4, atol=1e-4)
    # weight gradient: d/dW of sum(g * conv(x, W)) by finite structure -> numpy correlation
    xp = np.pad(x.d, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ho, wo = y.shape[2:]
    gw = np.zeros((cout, cin, 3, 3))
    for ky in range(3):
        for kx in range(3):
            patch = xp[:, :, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride]
            gw[:, :, ky, kx] = np.einsum("nchw,nohw->oc", patch, g)
    np.testing.assert_allclose(conv.W.g[:cout, :cin], gw, rtol=1e-4, atol=1e-4)
    outside = conv.W.g.copy()
    outside[:cout, :cin] = 0
    assert np.all(outside == 0)
    np.testing.assert_allclose(conv.b.g[:cout], g.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-4)
    assert np.all(conv.b.g[cout:] == 0)


def _conv_grads(conv, x, cout, rng):
    """Forward/backward of ``conv(x, cout)`` against numpy, from zeroed gradients; returns y."""
    y = conv(x, out_channels=cout)
    g = rng.normal(size=y.shape)
    loss = F.sum(y * nn.Variable.from_numpy_array(g))
    for p in conv.get_parameters().values():
        p.grad.zero()
    loss.forward()
    loss.backward()
    cin = x.shape[1]
    w, b = conv.W.d[:cout, :cin], conv.b.d[:cout]
    np.testing.assert_allclose(y.d, conv_np(x.d, w, b, 1, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.b.g[:cout], g.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-4)
    assert np.all(conv.b.g[cout:] == 0) and np.all(conv.W.g[cout:] == 0) and np.all(conv.W.g[:, cin:] == 0)
    assert np.any(conv.W.g[:cout, :cin] != 0)
    return y


def test_slices_are_reused_by_later_graphs_with_current_values_and_gradients():
    rng = np.random.RandomState(7)
    conv = ElasticConv(6, 8, 3, with_bias=True)
    randomize(conv.get_parameters(), rng)
    x = nn.Variable.from_numpy_array(rng.normal(size=(2, 4, 5, 5)))
    y1 = _conv_grads(conv, x, 5, rng)
    _conv_grads(conv, nn.Variable.from_numpy_array(rng.normal(size=(2, 3, 5, 5))), 2, rng)  # other widths
    randomize(conv.get_parameters(), rng)  # as a solver update would
    _conv_grads(conv, x, 5, rng)  # the same widths again: same slice nodes, current values
    w_block = conv.W.d[:5, :4]
    assert np.array_equal(y1.parent.inputs[1].d, w_block)  # the first graph's slice node was reused
    with nn.no_grad():  # an unlinked weight: its own slice, no gradient
        assert not conv(x, out_channels=5).parent.inputs[1].need_grad
    with nn.auto_forward():  # computed when built: a reused node would hold old values
        conv(x, out_channels=5)
        conv.W.d = conv.W.d + 1.0
        y = conv(x, out_channels=5)
        np.testing.assert_allclose(y.d, conv_np(x.d, conv.W.d[:5, :4], conv.b.d[:5], 1, 1), rtol=1e-4, atol=1e-4)


def test_elastic_conv_full_width_has_no_slice():
    conv = ElasticConv(4, 5, 1)
    y = conv(nn.Variable((1, 4, 3, 3)))
    assert y.parent.info.type_name == "Convolution"
    assert y.parent.inputs[1] is conv.W or y.parent.inputs[1].parent is None
    with pytest.raises(ValueError):
        conv(nn.Variable((1, 6, 3, 3)))


@pytest.mark.parametrize("cin", [3, 5])
def test_elastic_deconv_doubles_size_and_matches_numpy(cin):
    rng = np.random.RandomState(cin)
    de = ElasticDeconv(5, 4)
    de.W.d = rng.normal(size=de.W.shape)
    x = nn.Variable((2, cin, 3, 4))
    x.d = rng.normal(size=x.shape)
    y = de(x)
    y.forward()
    assert y.shape == (2, 4, 6, 8)
    np.testing.assert_allclose(y.d, deconv_np(x.d, de.W.d[:cin], 2, 1), rtol=1e-4, atol=1e-4)


def _bn(c_max=6, seed=0):
    rng = np.random.RandomState(seed)
    bn = ElasticBN(c_max, decay_rate=0.9, eps=1e-5)
    randomize(bn.get_parameters(), rng)
    return bn, rng


@pytest.mark.parametrize("c", [4, 6])
def test_bn_eval_uses_running_statistics_of_slice(c):
    bn, rng = _bn()
    bn.apply(training=False)
    x = nn.Variable((2, c, 3, 3))
    x.d = rng.normal(size=x.shape)
    y = bn(x)
    y.forward()
    p = {k: v.d.reshape(-1)[:c].reshape(1, c, 1, 1) for k, v in bn.get_parameters().items()}
    expect = (x.d - p["mean"]) / np.sqrt(p["var"] + 1e-5) * p["gamma"] + p["beta"]
    np.testing.assert_allclose(y.d, expect, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("c", [4, 6])
def test_bn_training_updates_running_statistics_of_active_slice_only(c):
    bn, rng = _bn(seed=1)
    bn.apply(training=True)
    mean0, var0 = bn.mean.d.reshape(-1).copy(), bn.var.d.reshape(-1).copy()
    beta, gamma = bn.beta.d.reshape(-1)[:c].copy(), bn.gamma.d.reshape(-1)[:c].copy()
    x = nn.Variable((2, c, 3, 4), need_grad=True)
    h = x * 1.0  # a computed BN input, as in a network
    y = bn(h)
    gy = rng.normal(size=y.shape)
    loss = F.sum(y * nn.Variable.from_numpy_array(gy))
    mean, var = mean0.copy(), var0.copy()
    for step in range(2):  # the same graph forwarded twice (gradient accumulation) updates twice
        x.d = rng.normal(1.5, 2.0, size=x.shape)
        for v in (x, bn.beta, bn.gamma):
            v.grad.zero()
        before = bn.mean.d.copy(), bn.var.d.copy()
        loss.forward(clear_no_need_grad=True)
        loss.backward(clear_buffer=True)
        if c < 6:  # a sliced graph's update is pending until committed (the trainer commits each step)
            assert bn.has_pending_statistics
            assert np.array_equal(bn.mean.d, before[0]) and np.array_equal(bn.var.d, before[1])
            assert bn.commit_statistics()
        assert not bn.has_pending_statistics
        assert not bn.commit_statistics()  # committing again writes nothing
        bm = x.d.mean(axis=(0, 2, 3))
        bv = x.d.var(axis=(0, 2, 3))
        n = x.d.size // c
        mean[:c] = 0.9 * mean[:c] + 0.1 * bm
        var[:c] = 0.9 * var[:c] + 0.1 * bv * n / (n - 1)
        np.testing.assert_allclose(bn.mean.d.reshape(-1), mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.var.d.reshape(-1), var, rtol=1e-5, atol=1e-6)
        assert np.array_equal(bn.mean.d.reshape(-1)[c:], mean0[c:])
        assert np.array_equal(bn.var.d.reshape(-1)[c:], var0[c:])
        # gradients of batch-stat BN, by hand
        xhat = (x.d - bm.reshape(1, c, 1, 1)) / np.sqrt(bv.reshape(1, c, 1, 1) + 1e-5)
        gb = gy.sum(axis=(0, 2, 3))
        gg = (gy * xhat).sum(axis=(0, 2, 3))
        gxhat = gy * gamma.reshape(1, c, 1, 1)
        gx = (gxhat - gxhat.mean(axis=(0, 2, 3), keepdims=True)
              - xhat * (gxhat * xhat).mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(bv.reshape(1, c, 1, 1) + 1e-5)
        np.testing.assert_allclose(x.g, gx, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(bn.beta.g.reshape(-1)[:c], gb, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(bn.gamma.g.reshape(-1)[:c], gg, rtol=1e-4, atol=1e-4)
        assert np.all(bn.beta.g.reshape(-1)[c:] == 0) and np.all(bn.gamma.g.reshape(-1)[c:] == 0)
    assert np.all(beta == bn.beta.d.reshape(-1)[:c])  # the forward never touches beta


def _train_forward(bn, x_np):
    """Training graph of ``bn`` on ``x_np`` (a computed input, as in a network), forwarded once."""
    bn.apply(training=True)
    x = nn.Variable.from_numpy_array(x_np)
    y = bn(x * 1.0)
    y.forward()
    return y, x


def _ema(mean, var, x_np, c):
    bm, bv, n = x_np.mean(axis=(0, 2, 3)), x_np.var(axis=(0, 2, 3)), x_np.size // c
    mean, var = mean.copy(), var.copy()
    mean[:c] = 0.9 * mean[:c] + 0.1 * bm
    var[:c] = 0.9 * var[:c] + 0.1 * bv * n / (n - 1)
    return mean, var


def test_bn_pending_statistics_committed_when_next_graph_is_built_and_only_once():
    bn, rng = _bn(seed=4)
    c = 4
    mean0, var0 = bn.mean.d.reshape(-1).copy(), bn.var.d.reshape(-1).copy()
    x1 = rng.normal(1.0, 2.0, size=(2, c, 3, 3)).astype(np.float32)
    x2 = rng.normal(-1.0, 0.5, size=(3, c, 2, 2)).astype(np.float32)
    y1, _ = _train_forward(bn, x1)
    assert np.array_equal(bn.mean.d.reshape(-1), mean0)  # pending
    # building the next graph (another width, evaluation mode) commits the first one's update
    bn.apply(training=False)
    bn(nn.Variable((1, 3, 2, 2)))
    mean1, var1 = _ema(mean0, var0, x1, c)
    np.testing.assert_allclose(bn.mean.d.reshape(-1), mean1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.var.d.reshape(-1), var1, rtol=1e-5, atol=1e-6)
    assert np.array_equal(bn.mean.d.reshape(-1)[c:], mean0[c:])
    # not applied twice: further builds and commits change nothing
    committed = bn.mean.d.copy(), bn.var.d.copy()
    bn(nn.Variable((1, 3, 2, 2)))
    assert not bn.commit_statistics()
    assert np.array_equal(bn.mean.d, committed[0]) and np.array_equal(bn.var.d, committed[1])
    # statistics set from outside after the commit are not overwritten by the old graph's values
    bn.mean.d = committed[0] + 1.0
    assert not bn.commit_statistics()
    assert np.array_equal(bn.mean.d, committed[0] + 1.0)
    bn.mean.d = committed[0]
    # the tracked graph forwarded again after a commit: its second update is committed too
    y1.forward()
    assert bn.commit_statistics()
    mean2, var2 = _ema(mean1, var1, x1, c)
    np.testing.assert_allclose(bn.mean.d.reshape(-1), mean2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.var.d.reshape(-1), var2, rtol=1e-5, atol=1e-6)
    # a new training graph starts from the committed values, at any width
    y3, _ = _train_forward(bn, x2[:, :3])
    mean3, var3 = _ema(mean2, var2, x2[:, :3], 3)
    x4 = rng.normal(size=(2, 6, 2, 2)).astype(np.float32)
    y4 = bn(nn.Variable.from_numpy_array(x4) * 1.0)  # full width: building it commits y3's update
    np.testing.assert_allclose(bn.mean.d.reshape(-1), mean3, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.var.d.reshape(-1), var3, rtol=1e-5, atol=1e-6)
    y4.forward()  # in place, all six features
    mean4, var4 = _ema(mean3, var3, x4, 6)
    np.testing.assert_allclose(bn.mean.d.reshape(-1), mean4, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.var.d.reshape(-1), var4, rtol=1e-5, atol=1e-6)
    after_full = bn.mean.d.copy()
    y3.forward()  # an older graph than the last built one is no longer tracked
    assert not bn.commit_statistics()
    assert np.array_equal(bn.mean.d, after_full)


def test_bn_statistics_pool_batches_exactly():
    rng = np.random.RandomState(3)
    stats = BNStatistics()
    batches = [rng.normal(2.0, 3.0, size=(n, 4, 3, 3)) for n in (1, 3, 2)]
    for b in batches:
        bm = nn.Variable.from_numpy_array(b.mean(axis=(0, 2, 3)).reshape(1, 4, 1, 1))
        bv = nn.Variable.from_numpy_array(b.var(axis=(0, 2, 3)).reshape(1, 4, 1, 1))
        stats.bind(bm, bv, b.size // 4)
        stats.accumulate()
    allx = np.concatenate(batches)
    mean, var = stats.result()
    np.testing.assert_allclose(mean, allx.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(var, allx.var(axis=(0, 2, 3)), rtol=1e-5)
    assert BNStatistics().result() is None
