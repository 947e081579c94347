"""Training, transfer and the learning check on a synthetic task with a known loss."""
import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import (PathFilter, PathFilterError, SyntheticTask, evaluate,
                                           pairwise_hinge_loss, split_indices, synthetic_pathset, train_path_filter)
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops, space_buckets

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
SPACE = get_space("ofa")
BUCKETS = space_buckets(SPACE, CFG, SIZE)


@pytest.fixture(scope="module")
def small_set():
    return synthetic_pathset(SyntheticTask(0), SPACE, CFG, SIZE, 8, seed=1)


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
    # transfer target: related, not identical
    t2 = task.perturbed(9, 0.3)
    np.testing.assert_allclose(t2.depth, 0.7 * task.depth + 0.3 * SyntheticTask(9).depth)


def test_split_is_stratified_and_deterministic():
    b = np.repeat(np.arange(5), [10, 10, 10, 10, 1])
    tr, va = split_indices(b, 0.2, seed=3)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(41))
    assert [int((b[va] == k).sum()) for k in range(5)] == [2, 2, 2, 2, 0]
    tr2, va2 = split_indices(b, 0.2, seed=3)
    assert np.array_equal(va, va2) and not np.array_equal(va, split_indices(b, 0.2, seed=4)[1])


def test_training_is_deterministic_and_keeps_the_best(small_set):
    kw = dict(buckets=BUCKETS, epochs=3, batch_size=8, lr=1e-3, seed=0)
    r1 = train_path_filter(small_set, **kw)
    r2 = train_path_filter(small_set, **kw)
    s1, s2 = r1.filter.state(), r2.filter.state()
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    assert [h["val_loss"] for h in r1.history] == [h["val_loss"] for h in r2.history]
    r3 = train_path_filter(small_set, **dict(kw, seed=1))
    assert not all(np.array_equal(s1[k], r3.filter.state()[k]) for k in s1)
    # the filter returned is the best-validation one, and its loss is what the history says
    vals = [h["val_loss"] for h in r1.history]
    assert len(vals) == 4 and r1.best_val_loss == min(vals) and vals[r1.best_epoch] == min(vals)
    va = small_set.subset(r1.val_index)
    b = BUCKETS.indices(va.flops)
    assert pairwise_hinge_loss(r1.filter.score(va.archs, bucket=b), va.val_loss, b) == pytest.approx(
        r1.best_val_loss, abs=1e-6)
    assert len(r1.train_index) == 30 and len(r1.val_index) == 10  # round(0.2 * 8) = 2 per bucket
    assert r1.filter.config.meta["best_epoch"] == r1.best_epoch and r1.filter.config.meta["flops_bounded"]


def test_ablation_switches(small_set):
    r = train_path_filter(small_set, buckets=BUCKETS, epochs=1, batch_size=8, budget=False, block_pe=False,
                          flops_bounded=False)
    c = r.filter.config
    assert c.budget is False and c.block_pe is False and c.meta["flops_bounded"] is False
    assert r.filter.parameters()["path_filter/bucket_embed/embed/W"].shape == (1, 32)
    # the no-flops-bounded validation loss takes every pair
    va = small_set.subset(r.val_index)
    s = r.filter.score(va.archs, bucket=BUCKETS.indices(va.flops))
    assert pairwise_hinge_loss(s, va.val_loss, [0] * len(va)) == pytest.approx(r.best_val_loss, abs=1e-6)


def test_pretrain_save_load_finetune(tmp_path, small_set):
    pre = train_path_filter(small_set, buckets=BUCKETS, epochs=2, batch_size=8, seed=0, supernet=CFG,
                            input_size=SIZE, block_pe=False)
    h5 = str(tmp_path / "pre" / "path_filter.h5")
    pre.filter.save(h5)
    target = synthetic_pathset(SyntheticTask(0).perturbed(5, 0.5), get_space("compofa"), CFG, SIZE, 10, seed=2)
    loaded = PathFilter.load(h5)
    ft = train_path_filter(target, init=h5, epochs=1, batch_size=8, seed=0)
    # fine-tuning starts from the pre-trained weights: its epoch-0 validation loss is theirs
    tb = ft.buckets
    va = target.subset(ft.val_index)
    b = tb.indices(va.flops)
    assert ft.history[0]["val_loss"] == pytest.approx(
        pairwise_hinge_loss(loaded.score(va.archs, bucket=b), va.val_loss, b), abs=1e-6)
    c = ft.filter.config
    assert c.vocab == pre.filter.config.vocab and c.block_pe is False and c.meta["fine_tuned"]
    assert c.supernet == CFG and c.input_size == SIZE  # inherited, so archs without FLOPs can be scored
    # buckets of the target path set's FLOPs range (no space given)
    assert tb.lo == pytest.approx(target.flops.min()) and tb.hi == pytest.approx(target.flops.max())
    assert ft.best_val_loss <= ft.history[0]["val_loss"]
    with pytest.raises(PathFilterError, match="block_pe=True but the initial filter"):
        train_path_filter(target, init=loaded, block_pe=True, epochs=0)


def test_bad_training_arguments(small_set):
    with pytest.raises(PathFilterError, match="at least"):
        train_path_filter(small_set.subset(range(5)), buckets=BUCKETS)
    with pytest.raises(PathFilterError, match="val_fraction"):
        train_path_filter(small_set, buckets=BUCKETS, val_fraction=1.0)


def test_filter_beats_flops_only_ranking_within_buckets():
    task = SyntheticTask(0)
    train = synthetic_pathset(task, SPACE, CFG, SIZE, 60, seed=1)
    test = synthetic_pathset(task, SPACE, CFG, SIZE, 40, seed=2)
    res = train_path_filter(train, buckets=BUCKETS, epochs=8, seed=0)
    rep = evaluate(res.filter, test, buckets=BUCKETS)
    base = rep["flops_only"]
    assert rep["kendall_tau_within"] > base["kendall_tau_within"] + 0.1, (rep["kendall_tau_within"],
                                                                            base["kendall_tau_within"])
    assert rep["weak"]["0.25"]["precision"] > base["weak"]["0.25"]["precision"]
