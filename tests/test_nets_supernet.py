"""Supernet paths against their extracted static networks (outputs, gradients, BN statistics),
weights files, BN re-calibration and the NNablaNAS Model interface. 1/8 width, 64 px, CPU."""

import random

import nnabla as nn
import nnabla.functions as F
import numpy as np
import pytest

import nnabla_nas.module as Mo
from nnabla_nas_detofa.nets import DetOFASupernet, StaticDetector, detofa_resnet50, extract
from nnabla_nas_detofa.nets.detector import IMAGE_MEAN, IMAGE_STD
from nnabla_nas_detofa.space import ConfigError, Arch, ArchError, SupernetConfig, get_space

CFG = dict(num_classes=3, width_mult=0.125, divisor=1)
SIZE = 64


def randomize(net, seed):
    """Random values everywhere (BN statistics too), so a wrong slice cannot go unnoticed."""
    rng = np.random.RandomState(seed)
    for key, p in net.get_parameters().items():
        if key.startswith("input_"):
            continue
        if key.endswith("/var"):
            v = rng.uniform(0.5, 2.0, p.shape)
        elif key.endswith("/gamma"):
            v = rng.uniform(0.5, 1.5, p.shape)
        elif key.endswith("/W"):
            v = rng.normal(0, np.sqrt(2.0 / np.prod(p.shape[1:])), p.shape)
        else:
            v = rng.normal(0, 0.2, p.shape)
        p.d = v.astype(np.float32)


@pytest.fixture(scope="module")
def supernet():
    net = DetOFASupernet(**CFG)
    randomize(net, 0)
    return net


def images(n=2, seed=0, size=SIZE):
    return np.random.RandomState(seed).uniform(0, 255, (n, 3, size, size)).astype(np.float32)


def forward(net, x_np, training=False):
    net.apply(training=training)
    x = nn.Variable(x_np.shape)
    x.d = x_np
    outs = net(x)
    nn.forward_all(outs)
    return [o.d.copy() for o in outs]


def eval_archs():
    """min and max paths, and random ones with the stem's residual unit skipped and kept."""
    space = get_space("ofa")
    rng = random.Random(5)
    archs = [space.extreme(False), space.extreme(True)]
    for stem in (0, 2, 0, 2):
        a = space.sample(rng)
        archs.append(a.replace(d=[stem] + list(a.d[1:])))
    return archs


def reference_forward(params, cfg, arch, x_np):
    """DETOFA.md §2 written out with plain nnabla functions on leading weight slices (eval mode)."""
    ch = cfg.arch_channels(arch)

    def const(key, *shape):
        a = params[key].d
        return nn.Variable.from_numpy_array(a[tuple(slice(0, s) for s in shape)] if shape else a)

    def conv(h, key, cout, stride=1, bias=False):
        k = params[key + "/W"].shape[-1]
        w = const(key + "/W", cout, h.shape[1])
        b = const(key + "/b", cout) if bias else None
        return F.convolution(h, w, b, pad=(k // 2, k // 2), stride=(stride, stride))

    def bn(h, key):
        c = h.shape[1]
        return F.batch_normalization(h, const(key + "/beta", 1, c), const(key + "/gamma", 1, c),
                                     const(key + "/mean", 1, c), const(key + "/var", 1, c), batch_stat=False,
                                     eps=cfg.bn_eps)

    def cbr(h, key, cout, stride=1, relu=True):
        y = bn(conv(h, key + "/conv", cout, stride), key + "/bn")
        return F.relu(y) if relu else y

    h = nn.Variable.from_numpy_array(x_np)
    h = (h - const("input_mean")) / const("input_std")
    h = cbr(h, "stem/conv1", ch["stem_mid"], stride=2)
    if arch.d[0] == 2:
        h = h + cbr(h, "stem/res", ch["stem_mid"])
    h = cbr(h, "stem/conv3", ch["stem_out"])
    h = F.max_pooling(h, (3, 3), (2, 2), pad=(1, 1))
    slot = 0
    for s, base in enumerate((2, 2, 4, 2)):
        out = ch["stage_out"][s]
        for u in range(base + arch.d[s + 1]):
            key, mid = f"stages/{s}/{u}", ch["mid"][slot + u]
            stride = (1, 2, 2, 2)[s] if u == 0 else 1
            y = cbr(h, key + "/conv1", mid)
            y = cbr(y, key + "/conv2", mid, stride)
            y = cbr(y, key + "/conv3", out, relu=False)
            if u == 0:
                sc = F.average_pooling(h, (stride, stride), (stride, stride)) if stride > 1 else h
                sc = cbr(sc, key + "/shortcut", out, relu=False)
            else:
                sc = h
            h = F.relu(y + sc)
        slot += base + 2
    for i in range(3):
        w = const(f"neck/{i}/deconv/W", h.shape[1])
        h = F.relu(bn(F.deconvolution(h, w, None, pad=(1, 1), stride=(2, 2)), f"neck/{i}/bn"))
    outs = []
    for name, n_out in (("hm", cfg.num_classes), ("wh", 2), ("reg", 2)):
        y = F.relu(conv(h, name + "/conv", cfg.head(), bias=True))
        outs.append(conv(y, name + "/out", n_out, bias=True))
    nn.forward_all(outs)
    return [o.d.copy() for o in outs]


@pytest.mark.parametrize("stem", [0, 2])
def test_supernet_path_matches_reference_forward(supernet, stem):
    a = get_space("ofa").sample(random.Random(20 + stem))
    arch = a.replace(d=[stem] + list(a.d[1:]))
    supernet.set_arch(arch)
    x = images(seed=stem)
    ref = reference_forward(supernet.get_parameters(), supernet.config, arch, x)
    for a, b in zip(ref, forward(supernet, x)):
        assert np.abs(a - b).max() <= 1e-4


@pytest.mark.parametrize("arch", eval_archs(), ids=lambda a: f"d{a.d[0]}w{a.w[0]}{a.w[2]}e{a.e[0]}")
def test_static_equals_supernet_path_in_eval_mode(supernet, arch):
    supernet.set_arch(arch)
    x = images()
    ref = forward(supernet, x)
    static = extract(supernet)
    assert static.arch == arch
    out = forward(static, x)
    for a, b in zip(ref, out):
        assert a.shape == b.shape
        assert np.abs(a - b).max() <= 1e-4
    assert ref[0].shape == (2, 3, SIZE // 4, SIZE // 4) and ref[1].shape == ref[2].shape == (2, 2, 16, 16)
    assert np.abs(ref[0]).max() > 1e-2  # a real signal, not all zeros


def test_static_holds_exactly_the_path():
    cfg = SupernetConfig(**CFG)
    arch = Arch([0, 0, 1, 2, 0], [0.2, 0.25, 0.35, 0.2] * 4 + [0.35, 0.2], [0, 1, 2, 1, 0, 2])
    net = StaticDetector(cfg, arch)
    keys = net.get_parameters().keys()
    assert not any(k.startswith("stem/res/") for k in keys)
    ch = cfg.arch_channels(arch)
    for s, depth in enumerate((2, 3, 6, 2)):
        units = {k.split("/")[2] for k in keys if k.startswith(f"stages/{s}/")}
        assert units == {str(i) for i in range(depth)}
    p = net.get_parameters()
    assert p["stem/conv1/conv/W"].shape == (ch["stem_mid"], 3, 3, 3)
    assert p["stem/conv3/conv/W"].shape == (ch["stem_out"], ch["stem_mid"], 3, 3)
    assert p["stages/1/2/conv2/conv/W"].shape == (ch["mid"][6], ch["mid"][6], 3, 3)
    assert p["stages/2/0/shortcut/conv/W"].shape == (ch["stage_out"][2], ch["stage_out"][1], 1, 1)
    assert p["neck/0/deconv/W"].shape == (ch["stage_out"][3], cfg.neck()[0], 4, 4)
    kept = StaticDetector(cfg, arch.replace(d=[2] + list(arch.d[1:])))
    assert kept.get_parameters()["stem/res/conv/W"].shape == (ch["stem_mid"], ch["stem_mid"], 3, 3)


def test_static_graph_has_no_slicing(supernet):
    arch = get_space("ofa").sample(random.Random(1))
    static = StaticDetector(supernet.config, arch)
    names = set()
    for o in static(nn.Variable((1, 3, SIZE, SIZE))):
        o.visit(lambda f: names.add(f.info.type_name))
    assert "Slice" not in names and "Convolution" in names and "Deconvolution" in names
    sup = set()
    supernet.set_arch(arch)
    supernet.apply(training=False)
    supernet(nn.Variable((1, 3, SIZE, SIZE)))[0].visit(lambda f: sup.add(f.info.type_name))
    assert "Slice" in sup


def test_training_mode_path_matches_static_outputs_gradients_and_bn_statistics():
    net = DetOFASupernet(**CFG)
    randomize(net, 1)
    arch = Arch([2, 1, 0, 2, 1], [0.25, 0.2, 0.35, 0.25] * 4 + [0.2, 0.25], [1, 0, 1, 2, 0, 1])
    net.set_arch(arch)
    static = extract(net)
    x_np = images(seed=3)
    targets_np = [np.random.RandomState(4).uniform(0, 1, (2, 3, 16, 16)).astype(np.float32),
                  np.random.RandomState(5).uniform(0, 4, (2, 2, 16, 16)).astype(np.float32),
                  np.random.RandomState(6).uniform(0, 1, (2, 2, 16, 16)).astype(np.float32),
                  (np.random.RandomState(7).uniform(0, 1, (2, 1, 16, 16)) > 0.9).astype(np.float32)]
    targets_np[0][0, 1, 3, 4] = 1.0
    results = []
    # graphs of another path and of this one first: the compared graph reuses their slice nodes
    for a in (get_space("ofa").extreme(True), arch):
        net.set_arch(a)
        net.apply(training=True)
        net(nn.Variable(x_np.shape))
    for model in (net, static):
        model.apply(training=True)
        x = nn.Variable(x_np.shape)
        x.d = x_np
        targets = [nn.Variable.from_numpy_array(t) for t in targets_np]
        outs = model(x)
        loss = model.loss(outs, targets)
        for p in model.get_parameters(grad_only=True).values():
            p.grad.zero()
        outs_p = [o.apply(persistent=True) for o in outs]
        loss.forward(clear_no_need_grad=True)
        loss.backward(clear_buffer=True)
        # as the trainer: commit the sliced BatchNorms' statistics after the step (static: none)
        n_written = model.commit_bn_statistics()
        assert n_written > 0 if model is net else n_written == 0
        results.append(([o.d.copy() for o in outs_p], float(loss.d)))
    (sup_out, sup_loss), (st_out, st_loss) = results
    for a, b in zip(sup_out, st_out):
        assert np.abs(a - b).max() <= 1e-4
    assert abs(sup_loss - st_loss) <= 1e-4 * max(1.0, abs(sup_loss))
    sp = net.get_parameters()
    for key, p in static.get_parameters().items():
        block = tuple(slice(0, s) for s in p.shape)
        full = sp[key]
        if p.need_grad:
            np.testing.assert_allclose(full.g[block], p.g, rtol=1e-3, atol=1e-5, err_msg=key)
            rest = full.g.copy()
            rest[block] = 0
            assert np.all(rest == 0), key
        else:  # BN statistics after one training step: supernet slice written like nnabla's own update
            np.testing.assert_allclose(full.d[block], p.d, rtol=1e-5, atol=1e-6, err_msg=key)
    # units the path drops got neither gradients nor statistic updates
    assert np.all(sp["stages/1/3/conv1/conv/W"].g == 0)


def _bn_statistics(net):
    """The running statistics as stored (read without ``get_parameters``, which commits)."""
    return {k: p.d.copy() for k, p in Mo.Module.get_parameters(net).items() if k.endswith(("/mean", "/var"))}


def _training_graph(model, targets_np):
    model.apply(training=True)
    x = nn.Variable((2, 3, SIZE, SIZE))
    loss = model.loss(model(x), [nn.Variable.from_numpy_array(t) for t in targets_np])
    return x, loss


def _step(x, loss, x_np):
    x.d = x_np
    loss.forward(clear_no_need_grad=True)
    loss.backward(clear_buffer=True)


def test_pending_bn_statistics_committed_when_next_graph_is_built_and_only_once():
    net = DetOFASupernet(**CFG)
    randomize(net, 3)
    space = get_space("ofa")
    arch, other = space.extreme(False), space.sample(random.Random(9))
    net.set_arch(arch)
    static = extract(net)
    targets_np = [np.random.RandomState(s).uniform(0, 1, (2, c, 16, 16)).astype(np.float32)
                  for s, c in ((10, 3), (11, 2), (12, 2), (13, 1))]
    st_x, st_loss = _training_graph(static, targets_np)
    raw0 = _bn_statistics(net)
    st_shapes = {k: v.shape for k, v in _bn_statistics(static).items()}
    sliced = {k for k, shape in st_shapes.items() if shape != raw0[k].shape}
    assert sliced and len(sliced) < len(st_shapes)  # the neck's BatchNorms run at full width

    def check_equals_static(where):
        raw, st = _bn_statistics(net), _bn_statistics(static)
        for key in raw0:
            if key in st:
                block = tuple(slice(0, n) for n in st[key].shape)
                np.testing.assert_allclose(raw[key][block], st[key], rtol=1e-5, atol=1e-6, err_msg=f"{where}: {key}")
                rest = raw[key].copy()
                rest[block] = raw0[key][block]
                assert np.array_equal(rest, raw0[key]), f"{where}: {key}"
            else:  # units the path drops
                assert np.array_equal(raw[key], raw0[key]), f"{where}: {key}"
        return raw

    def check_unchanged(before, where):
        for key, v in _bn_statistics(net).items():
            assert np.array_equal(v, before[key]), f"{where}: {key}"

    # step 1, then the next graph (another path) is built: committed
    x, loss = _training_graph(net, targets_np)
    _step(x, loss, images(seed=30))
    _step(st_x, st_loss, images(seed=30))
    raw = _bn_statistics(net)
    for key in sliced:  # pending: not written yet
        assert np.array_equal(raw[key], raw0[key]), key
    net.set_arch(other)  # every unit of the min path is also on this one
    _training_graph(net, targets_np)
    committed = check_equals_static("next graph")
    # not applied twice: commit again, build more graphs, get_parameters
    assert net.commit_bn_statistics() == 0
    net.apply(training=False)
    net(nn.Variable((1, 3, SIZE, SIZE)))
    _training_graph(net, targets_np)
    net.get_parameters()
    check_unchanged(committed, "after the commit")
    # step 2 on a new graph of the path; get_parameters commits
    net.set_arch(arch)
    x, loss = _training_graph(net, targets_np)
    _step(x, loss, images(seed=31))
    _step(st_x, st_loss, images(seed=31))
    params = net.get_parameters()
    committed = check_equals_static("get_parameters")
    # step 3 forwarded on the same graph as step 2 (gradient accumulation), committed explicitly
    _step(x, loss, images(seed=32))
    _step(st_x, st_loss, images(seed=32))
    assert net.commit_bn_statistics() == len(sliced) // 2
    committed = check_equals_static("commit_bn_statistics")
    assert net.commit_bn_statistics() == 0
    # statistics set from outside after a commit are kept, also when the next graph is built
    key = sorted(sliced)[0]
    params[key].d = committed[key] + 1.0
    net.apply(training=True)
    net(nn.Variable((1, 3, SIZE, SIZE)))
    assert np.array_equal(_bn_statistics(net)[key], committed[key] + 1.0)
    # a pending update never overwrites re-calibrated statistics
    x, loss = _training_graph(net, targets_np)
    _step(x, loss, images(seed=33))
    net.recalibrate_bn([images(seed=34)])
    calibrated = _bn_statistics(net)
    assert net.commit_bn_statistics() == 0
    net.set_arch(other)
    net.set_arch(arch)
    check_unchanged(calibrated, "after re-calibration")


def test_trainnet_loads_supernet_weights_and_static_weights_roundtrip(supernet, tmp_path):
    arch = get_space("ofa").sample(random.Random(11))
    calib = [images(3, seed=30), images(2, seed=31)]
    snap = supernet.snapshot()
    supernet.set_arch(arch)
    path = str(tmp_path / "supernet.h5")
    supernet.save_weights(path)
    supernet.recalibrate_bn(calib)       # the reference: the supernet path with its own statistics
    x = images(seed=8)
    ref = forward(supernet, x)
    supernet.restore(snap)
    for a in (arch, arch.to_dict(), arch.to_json()):
        net = detofa_resnet50.TrainNet(arch=a, weights=path, bn_calibration=calib, **CFG)
        assert isinstance(net, StaticDetector) and net.arch == arch
    out = forward(net, x)
    assert max(np.abs(a - b).max() for a, b in zip(ref, out)) <= 1e-4
    # the statistics of a supernet file belong to other paths: no silent use without re-calibration
    for a in (arch, get_space("ofa").extreme(True)):
        with pytest.raises(ConfigError, match="re-calibrate"):
            detofa_resnet50.TrainNet(arch=a, weights=path, **CFG)
    spath = str(tmp_path / "static.h5")
    net.save_weights(spath)
    again = detofa_resnet50.TrainNet(arch=arch, weights=spath, **CFG)   # its own statistics: taken as they are
    assert max(np.abs(a - b).max() for a, b in zip(out, forward(again, x))) == 0.0
    sup2 = detofa_resnet50.SearchNet(weights=path, arch=arch, **CFG)
    sup2.recalibrate_bn(calib)
    assert max(np.abs(a - b).max() for a, b in zip(ref, forward(sup2, x))) == 0.0
    with pytest.raises(ValueError):  # other widths: shapes do not fit
        DetOFASupernet(num_classes=3, width_mult=0.25, divisor=1, weights=path)


def test_recalibrated_eval_equals_batch_statistics_and_touches_only_the_path():
    net = DetOFASupernet(**CFG)
    randomize(net, 2)
    arch = Arch([0, 0, 1, 0, 2], [0.2] * 18, [0, 1, 0, 1, 2, 0])
    net.set_arch(arch)
    before = {k: p.d.copy() for k, p in net.get_parameters().items()}
    batches = [images(2, seed=20), images(3, seed=21)]
    assert net.recalibrate_bn(iter(batches)) == 5
    after = {k: p.d.copy() for k, p in net.get_parameters().items()}
    ch = net.config.arch_channels(arch)
    # first BN: exact statistics of stem conv 1 over the 5 images (numpy from the sliced weights)
    c = ch["stem_mid"]
    xs = (np.concatenate(batches) - np.array(IMAGE_MEAN).reshape(1, 3, 1, 1)) / np.array(IMAGE_STD).reshape(1, 3, 1, 1)
    w = before["stem/conv1/conv/W"][:c]
    xp = np.pad(xs, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h = sum(np.einsum("nchw,oc->nohw", xp[:, :, ky:ky + 64:2, kx:kx + 64:2], w[:, :, ky, kx])
            for ky in range(3) for kx in range(3))
    np.testing.assert_allclose(after["stem/conv1/bn/mean"].reshape(-1)[:c], h.mean(axis=(0, 2, 3)), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(after["stem/conv1/bn/var"].reshape(-1)[:c], h.var(axis=(0, 2, 3)), rtol=1e-4)
    for key in before:
        if key.startswith("stem/res/") or key.startswith("stages/0/2/") or not key.endswith(("/mean", "/var")):
            assert np.array_equal(before[key], after[key]), key  # not on the path, or not a statistic
    n_mid = ch["mid"][0]
    assert np.array_equal(before["stages/0/0/conv1/bn/mean"].reshape(-1)[n_mid:],
                          after["stages/0/0/conv1/bn/mean"].reshape(-1)[n_mid:])
    assert not np.array_equal(before["stages/0/0/conv1/bn/mean"], after["stages/0/0/conv1/bn/mean"])
    # calibrated on a single batch, eval mode reproduces the batch-statistics forward on it
    one = images(4, seed=22)
    net.recalibrate_bn([one])
    calibrated = {k: p.d.copy() for k, p in net.get_parameters().items()}
    ev = forward(net, one, training=False)
    tr = forward(net, one, training=True)
    for a, b in zip(ev, tr):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    for k, p in net.get_parameters().items():  # restore: the training forward moved the statistics
        p.d = calibrated[k]
    static = extract(net)  # an extracted path carries the calibrated statistics
    for a, b in zip(ev, forward(static, one)):
        assert np.abs(a - b).max() <= 1e-4
    with pytest.raises(ValueError):
        net.recalibrate_bn([])


def test_model_interface_for_nnabla_nas_runner(supernet):
    supernet.set_arch(get_space("ofa").extreme(False))
    supernet.apply(training=True)
    x = nn.Variable((2, 3, SIZE, SIZE))
    x.d = images()
    hm_t = np.zeros((2, 3, 16, 16), np.float32)
    hm_t[0, 2, 5, 6] = 1.0
    hm_t[0, 2, 5, 7] = 0.6
    mask = np.zeros((2, 1, 16, 16), np.float32)
    mask[0, 0, 5, 6] = 1
    targets = [nn.Variable.from_numpy_array(a) for a in
               (hm_t, np.full((2, 2, 16, 16), 3.0, np.float32), np.full((2, 2, 16, 16), 0.5, np.float32), mask)]
    outs = [o.apply(persistent=True) for o in supernet(x)]
    loss = supernet.loss(outs, targets, [1.0, 0.1, 1.0])
    loss.forward(clear_no_need_grad=True)
    loss.backward(clear_buffer=True)
    unlinked = [o.get_unlinked_variable().apply(need_grad=False) for o in outs]
    metrics = supernet.metrics(unlinked, targets)
    assert {"loss", "hm_loss", "wh_loss", "off_loss"} <= set(metrics)
    for m in metrics.values():
        m.forward()
    v = {k: float(m.d) for k, m in metrics.items()}
    assert abs(v["loss"] - (v["hm_loss"] + 0.1 * v["wh_loss"] + v["off_loss"])) < 1e-4
    assert abs(v["loss"] - float(loss.d)) < 1e-4 * max(1, v["loss"])
    wh = outs[1].d[0, :, 5, 6]
    assert abs(v["wh_loss"] - np.abs(wh - 3.0).sum() / 2) < 1e-4   # mean over the object's 2 values
    assert supernet.get_arch_parameters() == {}
    grads = supernet.get_net_parameters(grad_only=True)
    assert "input_mean" not in grads and not any(k.endswith(("/mean", "/var")) for k in grads)
    assert np.all(np.isfinite(grads["hm/out/b"].g)) and np.any(grads["hm/out/b"].g != 0)


def test_heads_initial_state_and_input_normalisation():
    net = DetOFASupernet(**CFG)
    assert np.allclose(net.get_parameters()["hm/out/b"].d, -2.19)
    assert np.allclose(net.get_parameters()["wh/out/b"].d, 0.0)
    x = images(1, seed=9)
    ref = forward(net, x)
    net.get_parameters()["input_mean"].d = np.zeros((1, 3, 1, 1))
    net.get_parameters()["input_std"].d = np.ones((1, 3, 1, 1))
    pre = (x - np.float32(IMAGE_MEAN).reshape(1, 3, 1, 1)) / np.float32(IMAGE_STD).reshape(1, 3, 1, 1)
    for a, b in zip(ref, forward(net, pre.astype(np.float32))):
        assert np.abs(a - b).max() <= 1e-4
    with pytest.raises(ValueError):
        net(nn.Variable((1, 3, 48, 64)))


def test_arch_and_argument_validation():
    net = DetOFASupernet(space="compofa", genotype=None, **CFG)
    coupled = net.sample_arch(random.Random(2))
    assert net.arch == coupled and net.space.contains(coupled)
    with pytest.raises(ArchError):
        net.set_arch(coupled.replace(w=list(coupled.w[:2]) + [2, 0, 2, 0], d=list(coupled.d[:1]) + [0, 2, 0, 2]))
    with pytest.raises(ArchError):
        net.set_arch({"d": [2] * 5})
    with pytest.raises(TypeError):
        DetOFASupernet(foo=1, **CFG)
    assert net.flops(SIZE) == pytest.approx(net.flops(SIZE, "backbone") + net.flops(SIZE, "head"))
    n0 = len(nn.get_parameters(grad_only=False))
    extract(net)
    assert len(nn.get_parameters(grad_only=False)) == n0  # nothing registered globally


def test_static_parameter_scope_holds_exactly_its_parameters():
    arch = get_space("ofa").sample(random.Random(4))
    net = StaticDetector(SupernetConfig(**CFG), arch)
    own = net.get_parameters()
    with net.parameter_scope():
        scoped = nn.get_parameters(grad_only=False)
        assert set(scoped) == set(own)
        assert all(scoped[k] is own[k] for k in own)
    assert "stem/conv1/conv/W" not in nn.get_parameters(grad_only=False)


def test_static_exports_to_nnp_with_only_its_parameters(supernet, tmp_path):
    import zipfile

    from nnabla.utils import nnp_graph
    from nnabla.utils.save import save

    supernet.set_arch(get_space("ofa").sample(random.Random(6)))
    net = extract(supernet)
    net.apply(training=False)
    x = nn.Variable((1, 3, SIZE, SIZE))
    x.d = images(1, seed=12)
    path = str(tmp_path / "det.nnp")
    with net.parameter_scope():
        outs = net(x)
        save(path, {"networks": [{"name": "det", "batch_size": 1, "outputs": dict(zip(("hm", "wh", "reg"), outs)),
                                  "names": {"x": x}}],
                    "executors": [{"name": "runtime", "network": "det", "data": ["x"],
                                   "output": ["hm", "wh", "reg"]}]}, variable_batch_size=False)
    nn.forward_all(outs)
    assert "parameter.h5" in zipfile.ZipFile(path).namelist()
    with nn.parameter_scope("", {}):
        g = nnp_graph.NnpLoader(path).get_network("det", batch_size=1)
        assert len(nn.get_parameters(grad_only=False)) == len(net.get_parameters())
        list(g.inputs.values())[0].d = x.d
        loaded = [g.outputs[k] for k in ("hm", "wh", "reg")]
        nn.forward_all(loaded)
        for a, b in zip(loaded, outs):
            assert np.abs(a.d - b.d).max() <= 1e-5


def test_head_initialisation_follows_centernet():
    from nnabla_nas_detofa.nets.supernet import DetOFASupernet as Net
    net = Net(num_classes=3, width_mult=0.125, divisor=1)
    hm_w, hm_b = net.hm.out.W.d, net.hm.out.b.d
    fan_in = hm_w.shape[1]
    assert np.allclose(hm_b, -2.19)
    assert np.abs(hm_w).max() <= 1 / np.sqrt(fan_in) + 1e-7
    assert hm_w.std() > 0.3 / np.sqrt(fan_in)          # a fan-in scale init, not 0.001
    for head in (net.wh, net.reg):
        assert np.allclose(head.out.b.d, 0.0) and head.out.W.d.std() < 0.003
