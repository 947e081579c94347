"""The learning check: on a synthetic task with a known loss, the filter ranks held-out paths better
than every baseline (FLOPs only, ridge on one-hot choices + log FLOPs, OFA-style MLP)."""
from nnabla_nas_detofa.path_filter import SyntheticTask, evaluate, fit_baseline, synthetic_pathset, train_path_filter
from nnabla_nas_detofa.space import SupernetConfig, get_space, space_buckets

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
SPACE = get_space("ofa")
BUCKETS = space_buckets(SPACE, CFG, SIZE)


def test_filter_beats_every_baseline_on_held_out_paths():
    task = SyntheticTask(1)
    train = synthetic_pathset(task, SPACE, CFG, SIZE, 50, seed=1)   # 250 paths: 200 train, 50 validation
    test = synthetic_pathset(task, SPACE, CFG, SIZE, 30, seed=2)    # 150 held-out paths
    res = train_path_filter(train, buckets=BUCKETS, epochs=3, patience=2, seed=0, ensemble=1)
    assert res.best_epoch >= 1
    rep = evaluate(res.filter, test, buckets=BUCKETS)
    tau, prec = rep["kendall_tau_within"], rep["weak"]["0.25"]["precision"]
    for kind in ("flops", "ridge", "mlp"):
        b = fit_baseline(kind, train, buckets=BUCKETS, seed=0, **({"epochs": 30} if kind == "mlp" else {}))
        q = evaluate(b.ranker, test, buckets=BUCKETS)
        assert tau > q["kendall_tau_within"] + 0.05, (kind, tau, q["kendall_tau_within"])
        assert prec > q["weak"]["0.25"]["precision"], (kind, prec, q["weak"]["0.25"]["precision"])
