"""Training: splits, within-bucket batches and pairs, early stopping, checkpoint rules, determinism,
held-out reports, transfer."""
import json

import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import (PathFilter, PathFilterError, PathSet, SyntheticTask, evaluate,
                                           held_out_quality, kendall_tau_within, pairwise_hinge_loss, split_indices,
                                           synthetic_pathset, train_path_filter, validation_quality)
from nnabla_nas_detofa.path_filter.train import batch_pairs, epoch_batches
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops, space_buckets

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
SPACE = get_space("ofa")
BUCKETS = space_buckets(SPACE, CFG, SIZE)
FAST = dict(buckets=BUCKETS, batch_size=8, lr=1e-3, ensemble=1)


@pytest.fixture(scope="module")
def small_set():
    return synthetic_pathset(SyntheticTask(0), SPACE, CFG, SIZE, 8, seed=1)


def _states_equal(a, b):
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _relabel(ps, loss):
    return PathSet.from_lists(ps.archs, ps.flops, loss)


def test_synthetic_task_is_the_stated_function():
    task = SyntheticTask(3, noise=0.0)
    a = SPACE.sample(__import__("random").Random(0))
    f = mflops(a, CFG, SIZE)
    v = 2.0 - 0.3 * np.log(f / 1.5)
    v += task.stem[[0, 2].index(a.d[0]), a.w[0], a.w[1]]
    for s in range(4):
        v += task.depth[s, a.d[s + 1]] + task.width[s, a.w[s + 2]] + task.depth_width[s, a.d[s + 1], a.w[s + 2]]
    stage_of = [0] * 4 + [1] * 4 + [2] * 6 + [3] * 4
    for k in a.active_slots():
        v += task.expand[k, a.w[2 + stage_of[k]], [0.2, 0.25, 0.35].index(a.e[k])]
    assert task.clean_loss(a, f, flops_ref=1.5) == pytest.approx(v)
    ps = synthetic_pathset(task, SPACE, CFG, SIZE, 3, seed=0)
    assert len(ps) == 15 and [r.extra["bucket"] for r in ps] == [b for b in range(5) for _ in range(3)]
    assert np.all(BUCKETS.indices(ps.flops) == [r.extra["bucket"] for r in ps])
    t2 = task.perturbed(9, 0.3)
    np.testing.assert_allclose(t2.depth, 0.7 * task.depth + 0.3 * SyntheticTask(9).depth)


def test_split_is_stratified_disjoint_and_deterministic():
    b = np.repeat(np.arange(5), [10, 10, 10, 10, 1])
    tr, va, te = split_indices(b, 0.2, seed=3)
    assert len(te) == 0 and sorted(np.concatenate([tr, va]).tolist()) == list(range(41))
    assert [int((b[va] == k).sum()) for k in range(5)] == [2, 2, 2, 2, 0]
    sp = split_indices(b, 0.2, seed=3, test_fraction=0.3)
    assert sorted(np.concatenate(sp).tolist()) == list(range(41))
    assert [int((b[sp.test] == k).sum()) for k in range(5)] == [3, 3, 3, 3, 0]
    assert [int((b[sp.val] == k).sum()) for k in range(5)] == [2, 2, 2, 2, 0]
    assert np.array_equal(sp.val, split_indices(b, 0.2, 3, 0.3).val)
    assert not np.array_equal(sp.val, split_indices(b, 0.2, 4, 0.3).val)
    # tiny buckets keep a training path: 3 paths -> 1 test, 1 val, 1 train
    t3 = split_indices(np.zeros(3, int), 0.2, 0, 0.1)
    assert [len(x) for x in t3] == [1, 1, 1]


def test_epoch_batches_hold_one_bucket_and_cover_every_training_path_once():
    rng = np.random.RandomState(0)
    bucket = rng.randint(0, 5, 200)
    train = np.sort(rng.choice(200, 150, replace=False))
    batches = epoch_batches(train, bucket, 16, True, np.random.RandomState(1))
    assert all(len(set(bucket[bt])) == 1 for bt in batches)
    assert all(2 <= len(bt) <= 16 for bt in batches)
    assert sorted(np.concatenate(batches).tolist()) == train.tolist()
    # the buckets' batches are interleaved, not one bucket after the other
    order = [int(bucket[bt[0]]) for bt in batches]
    assert order != sorted(order)
    mixed = epoch_batches(train, bucket, 16, False, np.random.RandomState(1))
    assert sorted(np.concatenate(mixed).tolist()) == train.tolist()
    assert any(len(set(bucket[bt])) > 1 for bt in mixed)
    # a bucket with one training path gives no batch (no pair)
    one = epoch_batches(np.array([0, 1, 2]), np.array([0, 0, 1]), 8, True, np.random.RandomState(0))
    assert [sorted(bt.tolist()) for bt in one] == [[0, 1]]


def test_batch_pairs_count_every_pair_of_a_bucket_batch():
    v = np.array([0.3, 0.1, 0.2, 0.5])
    t, w = batch_pairs(v, np.zeros(4, int), True)
    assert np.count_nonzero(w) == 6 and w.sum() == pytest.approx(1.0)
    assert t[1, 0] == 1 and t[0, 1] == -1  # path 1 has the lower loss
    _, w2 = batch_pairs(v, np.array([0, 0, 1, 1]), True)
    assert np.count_nonzero(w2) == 2 and w2[0, 1] == w2[2, 3] == pytest.approx(0.5)
    _, w3 = batch_pairs(v, np.array([0, 0, 1, 1]), False)
    assert np.count_nonzero(w3) == 6
    assert batch_pairs(v[:2], np.array([0, 1]), True) is None


def test_training_is_deterministic_and_keeps_the_best(small_set):
    kw = dict(FAST, epochs=3, patience=10, seed=0)
    r1 = train_path_filter(small_set, **kw)
    r2 = train_path_filter(small_set, **kw)
    assert _states_equal(r1.filter.state(), r2.filter.state())
    assert [h["val_loss"] for h in r1.history] == [h["val_loss"] for h in r2.history]
    r3 = train_path_filter(small_set, **dict(kw, seed=1))
    assert not _states_equal(r1.filter.state(), r3.filter.state())
    taus = [h["val_tau"] for h in r1.history]
    assert len(taus) == 4 and r1.best_epoch >= 1
    assert r1.best_epoch == 1 + int(np.argmax(taus[1:]))  # the first of the best (strict improvement)
    va = small_set.subset(r1.val_index)
    b = BUCKETS.indices(va.flops)
    s = r1.filter.score(va.archs, bucket=b)
    assert kendall_tau_within(s, -va.val_loss, b) == pytest.approx(taus[r1.best_epoch], abs=1e-9)
    z = np.log(s / (1 - s))  # the loss is on the logits (loss_on='logit')
    assert pairwise_hinge_loss(z, va.val_loss, b) == pytest.approx(r1.history[r1.best_epoch]["val_loss"], rel=1e-5)
    assert len(r1.train_index) == 30 and len(r1.val_index) == 10  # round(0.2 * 8) = 2 per bucket
    meta = r1.filter.config.meta
    assert meta["best_epoch"] == r1.best_epoch and meta["flops_bounded"] and meta["select"] == "tau"


def test_early_stopping_after_patience_epochs_without_improvement(small_set):
    # a learning rate so small that no weight moves: validation never improves after epoch 1
    r = train_path_filter(small_set, **dict(FAST, lr=1e-30, wide_lr=1e-30, epochs=50, patience=3))
    assert r.stopped == "patience" and r.best_epoch == 1
    assert [h["epoch"] for h in r.history] == [0, 1, 2, 3, 4]
    capped = train_path_filter(small_set, **dict(FAST, epochs=2, patience=30))
    assert capped.stopped == "epochs" and len(capped.history) == 3


def test_scratch_never_returns_untrained_weights_fine_tuning_may_keep_its_start(small_set):
    bucket = BUCKETS.indices(small_set.flops)
    val = split_indices(bucket, 0.2, 0).val
    # validation labels reversed: learning the training labels makes validation worse
    loss = small_set.val_loss.copy()
    loss[val] = -loss[val]
    adversarial = _relabel(small_set, loss)
    kw = dict(FAST, lr=3e-3, epochs=3, patience=5, seed=0)
    scratch = train_path_filter(adversarial, **kw)
    untrained = PathFilter(scratch.filter.config, seed=0).state()
    assert scratch.best_epoch >= 1 and not _states_equal(scratch.filter.state(), untrained)
    # a start that is good on the (reversed) validation labels: trained on the reversed task
    start = train_path_filter(_relabel(small_set, -small_set.val_loss), **dict(kw, epochs=4)).filter
    ft = train_path_filter(adversarial, init=start, **kw)
    assert ft.history[0]["val_tau"] > max(h["val_tau"] for h in ft.history[1:])
    assert ft.best_epoch == 0 and _states_equal(ft.filter.state(), start.state())
    assert ft.filter.config.meta["fine_tuned"] is True


def test_held_out_quality_is_on_paths_that_did_not_select_the_checkpoint(small_set):
    r = train_path_filter(small_set, **dict(FAST, epochs=2, test_fraction=0.25))
    tr, va, te = set(r.train_index), set(r.val_index), set(r.test_index)
    assert len(te) == 10 and not (tr & te) and not (va & te) and len(tr | va | te) == len(small_set)
    rep = held_out_quality(r, small_set)
    assert rep["held_out"] is True and rep["computed_on"].startswith("test split: 10 paths")
    direct = evaluate(r.filter, small_set.subset(r.test_index), buckets=BUCKETS)
    assert rep["kendall_tau_within"] == direct["kendall_tau_within"]
    assert json.dumps(rep["weak"]) == json.dumps(direct["weak"])  # NaN where a bucket has no weak path
    other = synthetic_pathset(SyntheticTask(0), SPACE, CFG, SIZE, 3, seed=9)
    ext = held_out_quality(r, small_set, other, test_name="other.jsonl")
    assert ext["n"] == 15 and ext["computed_on"].startswith("other.jsonl: 15 paths") and ext["held_out"]
    val = validation_quality(r, small_set)
    assert val["held_out"] is False and "selected the checkpoint" in val["computed_on"]
    r0 = train_path_filter(small_set, **dict(FAST, epochs=1))
    assert held_out_quality(r0, small_set)["held_out"] is False  # no test split: says so


def test_ensemble_training(small_set, tmp_path):
    r = train_path_filter(small_set, **dict(FAST, epochs=1, ensemble=2, seed=5))
    f = r.filter
    assert f.n_members == 2 and [m["seed"] for m in r.members] == [5, 6]
    assert not _states_equal(f.member(0).state(), {k: v for k, v in f.member(1).state().items()})
    f.save(str(tmp_path / "e.h5"))
    g = PathFilter.load(str(tmp_path / "e.h5"))
    np.testing.assert_array_equal(g.score(small_set.archs, bucket=BUCKETS.indices(small_set.flops)),
                                  f.score(small_set.archs, bucket=BUCKETS.indices(small_set.flops)))
    ft = train_path_filter(small_set, **dict(FAST, epochs=1, ensemble=2, init=f))
    assert ft.filter.n_members == 2
    with pytest.raises(PathFilterError, match="ensemble=3 but the initial filter has 2"):
        train_path_filter(small_set, **dict(FAST, epochs=1, ensemble=3, init=f))


def test_ablation_switches(small_set):
    r = train_path_filter(small_set, **dict(FAST, epochs=1, budget=False, block_pe=False, flops_bounded=False,
                                            wide=False))
    c = r.filter.config
    assert c.budget is False and c.block_pe is False and c.wide is False and c.meta["flops_bounded"] is False
    assert r.filter.parameters()["path_filter/bucket_embed/embed/W"].shape == (1, 32)
    # the no-flops-bounded validation loss takes every pair
    va = small_set.subset(r.val_index)
    s = r.filter.score(va.archs, bucket=BUCKETS.indices(va.flops))
    z = np.log(s / (1 - s))
    assert pairwise_hinge_loss(z, va.val_loss, [0] * len(va)) == pytest.approx(r.history[1]["val_loss"], rel=1e-5)
    lit = train_path_filter(small_set, **dict(FAST, epochs=1, loss_on="score", select="loss"))
    va_s = lit.filter.score(va.archs, bucket=BUCKETS.indices(va.flops))
    assert pairwise_hinge_loss(va_s, va.val_loss, BUCKETS.indices(va.flops)) == pytest.approx(
        lit.best_val_loss, abs=1e-6)


def test_pretrain_save_load_finetune(tmp_path, small_set):
    pre = train_path_filter(small_set, **dict(FAST, epochs=2, seed=0, supernet=CFG, input_size=SIZE,
                                              block_pe=False))
    h5 = str(tmp_path / "pre" / "path_filter.h5")
    pre.filter.save(h5)
    target = synthetic_pathset(SyntheticTask(0).perturbed(5, 0.5), get_space("compofa"), CFG, SIZE, 10, seed=2)
    loaded = PathFilter.load(h5)
    ft = train_path_filter(target, init=h5, epochs=1, batch_size=8, seed=0, ensemble=1)
    tb = ft.buckets
    va = target.subset(ft.val_index)
    b = tb.indices(va.flops)
    s = loaded.score(va.archs, bucket=b)
    assert ft.history[0]["val_tau"] == pytest.approx(kendall_tau_within(s, -va.val_loss, b), abs=1e-9)
    c = ft.filter.config
    assert c.vocab == pre.filter.config.vocab and c.block_pe is False and c.meta["fine_tuned"]
    assert c.supernet == CFG and c.input_size == SIZE
    assert tb.lo == pytest.approx(target.flops.min()) and tb.hi == pytest.approx(target.flops.max())
    assert ft.best_val_tau >= ft.history[0]["val_tau"]
    with pytest.raises(PathFilterError, match="block_pe=True but the initial filter"):
        train_path_filter(target, init=loaded, block_pe=True, epochs=0, ensemble=1)
    kept = train_path_filter(target, init=loaded, epochs=0, ensemble=1)  # fine-tuning for 0 epochs keeps the start
    assert _states_equal(kept.filter.state(), loaded.state())


@pytest.mark.parametrize("kw, match", [
    ({"lr": float("nan")}, "lr=nan"), ({"lr": 0.0}, "lr=0.0"), ({"wide_lr": float("inf")}, "wide_lr=inf"),
    ({"epochs": 0}, "epochs=0"), ({"patience": 0}, "patience=0"), ({"batch_size": 1}, "batch_size=1"),
    ({"val_fraction": 1.0}, "val_fraction"), ({"test_fraction": 0.8}, "test_fraction=0.8"),
    ({"ensemble": 0}, "ensemble=0"), ({"select": "x"}, "select='x'"), ({"loss_on": "x"}, "loss_on='x'"),
    ({"weight_decay": -1.0}, "weight_decay=-1.0"), ({"max_seconds": 0}, "max_seconds=0"),
])
def test_bad_training_arguments(small_set, kw, match):
    with pytest.raises(PathFilterError, match=match):
        train_path_filter(small_set, buckets=BUCKETS, **kw)


def test_too_few_paths(small_set):
    with pytest.raises(PathFilterError, match="at least"):
        train_path_filter(small_set.subset(range(5)), buckets=BUCKETS)


def test_wide_warm_up_fits_a_loss_linear_in_the_one_hot_features(small_set):
    from nnabla_nas_detofa.path_filter.model import PathFilterConfig, default_vocabulary
    from nnabla_nas_detofa.path_filter.train import warm_up_wide
    ps = synthetic_pathset(SyntheticTask(2), SPACE, CFG, SIZE, 40, seed=3)
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=BUCKETS, wide=True), seed=0)
    ids, rows = flt.inputs(ps.archs, bucket=BUCKETS.indices(ps.flops))
    # a loss that a weight per (position, token) represents exactly
    w = np.random.RandomState(0).randn(19 * len(flt.config.vocab))
    loss = w[ids + np.arange(19) * len(flt.config.vocab)].sum(axis=1)
    bucket = BUCKETS.indices(ps.flops)
    sp = split_indices(bucket, 0.2, 0)
    before = flt.state()
    info = warm_up_wide(flt, ids, sp.train, sp.val, bucket, loss, True, "logit", 0.1)
    after = flt.state()
    assert np.all(after["path_filter/out/affine/W"] == 0)  # the network's logit is a constant now
    changed = [k for k in after if not np.array_equal(after[k], before[k])]
    assert sorted(changed) == ["path_filter/out/affine/W", "path_filter/wide/choice/W", "path_filter/wide/token/W"]
    z = flt.logits_ids(ids, rows)
    assert info["steps"] > 0 and info["val_tau"] == pytest.approx(kendall_tau_within(z[sp.val], -loss[sp.val],
                                                                                      bucket[sp.val]))
    assert kendall_tau_within(z[sp.val], -loss[sp.val], bucket[sp.val]) > 0.7  # 160 training paths, 637 weights
    assert kendall_tau_within(z[sp.train], -loss[sp.train], bucket[sp.train]) > 0.9


def test_joint_training_reads_the_weights_the_warm_up_left(small_set, monkeypatch):
    """The network trained in epoch 1 sees the warmed-up wide head and the zeroed output layer
    (the warm-up assigns new arrays to them; views taken before it would be stale)."""
    from nnabla_nas_detofa.path_filter import numpy_net
    seen = []
    original = numpy_net.NumpyNet.forward

    def spy(self, ids, rows, keep=False):
        if keep and not seen:
            seen.append({k: np.array(v, copy=True) for k, v in self.p.items()})
        return original(self, ids, rows, keep)

    monkeypatch.setattr(numpy_net.NumpyNet, "forward", spy)
    from nnabla_nas_detofa.path_filter.train import split_indices as split
    from nnabla_nas_detofa.path_filter.train import warm_up_wide
    res = train_path_filter(small_set, **dict(FAST, epochs=1, seed=3))
    # the same warm-up, run alone on a filter built the same way, gives the weights epoch 1 must start from
    ref = PathFilter(res.filter.config, seed=3)
    bucket = BUCKETS.indices(small_set.flops)
    sp = split(bucket, 0.2, 3)
    ids, _ = ref.inputs(small_set.archs, bucket=bucket)
    warm_up_wide(ref, ids, sp.train, sp.val, bucket, small_set.val_loss, True, "logit", 0.1)
    start = {k[len("path_filter/"):]: v for k, v in ref.state().items()}
    assert np.all(seen[0]["out/affine/W"] == 0)
    for k in ("out/affine/W", "wide/token/W", "wide/choice/W", "fc1/affine/W"):
        assert np.array_equal(seen[0][k], start[k]), k


def test_fine_tuning_refuses_a_filter_that_does_not_fit(small_set, tmp_path):
    from nnabla_nas_detofa.path_filter.model import PathFilterConfig, default_vocabulary
    from nnabla_nas_detofa.path_filter.train import check_initial_filter, path_tokens
    vocab = default_vocabulary()
    used = set(path_tokens(small_set.archs))
    drop = sorted(t for t in used if t.startswith("W"))[:2]
    narrow = PathFilter(PathFilterConfig(vocab=[t for t in vocab if t not in drop], buckets=BUCKETS, wide=True))
    with pytest.raises(PathFilterError, match=r"lacks 2 token\(s\) of the target paths: " + ", ".join(drop)) as err:
        train_path_filter(small_set, init=narrow, epochs=0, buckets=BUCKETS)
    assert "\n" not in str(err.value)
    ok = PathFilter(PathFilterConfig(vocab=vocab, buckets=BUCKETS, wide=True, block_pe=False))
    check_initial_filter(ok, {"block_pe": None, "ensemble": 1}, vocab)  # fits: no error
    with pytest.raises(PathFilterError, match="block_pe=True but the initial filter was trained with block_pe=False"):
        check_initial_filter(ok, {"block_pe": True}, vocab)


def test_bagging_gives_each_member_its_own_validation_paths_and_keeps_the_test_split(small_set):
    from nnabla_nas_detofa.path_filter.train import member_split
    bucket = BUCKETS.indices(small_set.flops)
    sp = split_indices(bucket, 0.2, 3, test_fraction=0.25)
    splits = [member_split(sp, bucket, 3, m) for m in range(3)]
    assert splits[0] is sp
    assert np.array_equal(member_split(sp, bucket, 3, 1).val, splits[1].val)  # deterministic
    for s in splits:
        assert np.array_equal(s.test, sp.test)
        assert not set(s.train) & set(s.val) and not (set(s.train) | set(s.val)) & set(sp.test)
        assert sorted(set(s.train) | set(s.val)) == sorted(set(sp.train) | set(sp.val))
        for b in np.unique(bucket):  # as many validation paths per bucket as member 0
            assert np.count_nonzero(bucket[s.val] == b) == np.count_nonzero(bucket[sp.val] == b)
    assert not np.array_equal(splits[1].val, sp.val) and not np.array_equal(splits[2].val, splits[1].val)
    kw = dict(FAST, epochs=1, seed=3, test_fraction=0.25, ensemble=2)
    bag = train_path_filter(small_set, **kw)
    same = train_path_filter(small_set, **dict(kw, bagging=False))
    assert [i["n_val"] for i in bag.members] == [len(sp.val)] * 2
    assert np.array_equal(bag.test_index, sp.test) and np.array_equal(bag.val_index, sp.val)
    assert bag.filter.config.meta["bagging"] is True and same.filter.config.meta["bagging"] is False
    # member 0 is the same network either way; member 1 learned from other paths
    b0, s0 = bag.filter.member(0).state(), same.filter.member(0).state()
    assert all(np.array_equal(b0[k], s0[k]) for k in b0)
    b1, s1 = bag.filter.member(1).state(), same.filter.member(1).state()
    assert any(not np.array_equal(b1[k], s1[k]) for k in b1)
