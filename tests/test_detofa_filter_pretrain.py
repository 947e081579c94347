"""``hparams.filter_pretrain``: the DetOFA run pre-trains its path filter on a source supernet's
labelled paths (phase 0) and fine-tunes that filter on the target's paths; bad settings stop the
run in one line before any work."""
import json
import os
import random
import subprocess

import numpy as np
import pytest

from nnabla_nas_detofa.path_filter import PathFilter, PathSet, train_path_filter
from nnabla_nas_detofa.runners.detofa import pretrain_options, source_buckets
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops
from nnabla_nas_detofa.space.buckets import Buckets

from test_detofa_pipeline import BIN, experiment, write

TINY = SupernetConfig(num_classes=5, width_mult=0.0625, divisor=1)


def source_paths(path, n=60, seed=0, scale=1.0):
    """A labelled path set of the OFA space at the tiny test network's FLOPs (64 px); the label
    prefers wide stages (a hidden rule the filter can learn)."""
    space, rng = get_space("ofa"), random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    flops = [mflops(a, TINY, 64) * scale for a in archs]
    loss = [3.0 - 0.1 * float(np.mean(a.to_dict()["w"])) + 0.001 * rng.random() for a in archs]
    PathSet.from_lists(archs, flops, loss).write(path)
    return path


def test_source_buckets_are_the_targets_when_the_paths_fit():
    target = Buckets(10.0, 20.0, 5)
    same = PathSet.from_lists([get_space("ofa").extreme(False)] * 2, [10.0, 20.0], [1.0, 2.0])
    assert source_buckets(same, target) == (target, "the target space's")
    wider = PathSet.from_lists([get_space("ofa").extreme(False)] * 2, [30.0, 90.0], [1.0, 2.0])
    b, which = source_buckets(wider, target)
    assert (b.lo, b.hi, b.n) == (30.0, 90.0, 5) and "own" in which


def test_pretrain_options_keep_the_filters_model_and_own_schedule():
    flt = {"epochs": 60, "max_seconds": 20, "ensemble": 3, "wide": False, "val_fraction": 0.5, "test_fraction": 0.0,
           "patience": 10, "budget": None}
    pre = {"paths": "p.jsonl", "epochs": 100, "max_seconds": None, "val_fraction": 0.2, "test_fraction": 0.2,
           "patience": 10, "batch_size": 32, "lr": 1e-3, "wide_lr": 0.1, "weight_decay": 0.0, "select": "tau",
           "warm_up": True}
    o = pretrain_options(flt, pre)
    assert o["ensemble"] == 3 and o["wide"] is False and o["budget"] is None          # the fine-tuned model's
    assert o["epochs"] == 100 and o["max_seconds"] is None and o["test_fraction"] == 0.2   # its own schedule
    assert "paths" not in o


def test_run_pretrains_then_fine_tunes(tiny_voc, tmp_path):
    src = source_paths(str(tmp_path / "source.jsonl"))
    out = str(tmp_path / "run")
    conf = experiment(tiny_voc, out, epoch=2, warmup_epochs=1, search=None, repeatability_paths=0,
                      figure_paths_per_bucket=0, checkpoint_every=0,
                      filter_pretrain={"paths": src, "epochs": 5, "test_fraction": 0.2},
                      filter={"epochs": 2, "batch_size": 4, "ensemble": 1})
    r = subprocess.run([BIN, "-f", write(str(tmp_path), conf, "exp.json")], capture_output=True, text=True,
                       timeout=900, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    init = os.path.join(out, "filter_pretrain", "path_filter.h5")
    q0 = json.load(open(os.path.join(out, "filter_pretrain", "quality.json")))
    assert q0["paths"] == 60 and q0["buckets_from"] == "the target space's" and q0["quality"]["held_out"]
    assert q0["best_epoch"] <= 5 and q0["training"]["n_test"] > 0
    assert PathFilter.load(init).n_members == 1
    q1 = json.load(open(os.path.join(out, "paths", "quality.json")))
    assert q1["fine_tuned_from"] == init
    s = json.load(open(os.path.join(out, "summary.json")))
    assert s["phases"]["filter_pretrain"]["done"] and s["filter_quality"]["pretrain"] == q0["quality"]
    log = r.stdout + r.stderr
    assert log.index("Path filter pre-trained") < log.index("epoch 0 ")   # phase 0: before the supernet trains
    # the final paths of Ã are fewer than a filter from scratch needs: fine-tuning still runs, the
    # baselines (fitted from scratch) are left out and the log says so
    q2 = json.load(open(os.path.join(out, "paths_final", "quality.json")))
    assert q2["paths"] < 10 and q2["fine_tuned_from"] == os.path.join(out, "paths", "path_filter.h5")
    assert q2["baselines"] == {} and "Baselines not fitted" in log


def test_fine_tuning_needs_fewer_paths_than_training(tmp_path):
    from nnabla_nas_detofa.path_filter.model import PathFilterError
    big = PathSet.read(source_paths(str(tmp_path / "big.jsonl")))
    small = PathSet.read(source_paths(str(tmp_path / "small.jsonl"), n=6, seed=1))
    with pytest.raises(PathFilterError, match="6 paths; training needs at least 10"):
        train_path_filter(small, epochs=1, ensemble=1, seed=0)
    init = train_path_filter(big, epochs=2, ensemble=1, seed=0).filter
    res = train_path_filter(small, init=init, epochs=2, ensemble=1, seed=0)
    assert res.filter.n_members == 1
    with pytest.raises(PathFilterError, match="1 paths; fine-tuning needs at least 2"):
        train_path_filter(small.subset([0]), init=init, epochs=2, ensemble=1, seed=0)


@pytest.mark.parametrize("mutate,needle", [
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "none.jsonl")}),
     "hparams.filter_pretrain.paths="),
    (lambda h, d: h.update(filter_pretrain={"paths": d}), "not a file"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "few.jsonl")}),
     "pre-training needs at least 10"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "bad.jsonl")}), "bad.jsonl:2"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "source.jsonl"), "epochs": 0}),
     "hparams.filter_pretrain.epochs=0"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "source.jsonl"), "lr": "fast"}),
     "hparams.filter_pretrain.lr"),
    (lambda h, d: h.update(filter_pretrain={}), "missing key 'hparams.filter_pretrain.paths'"),
    (lambda h, d: h.update(filter_pretrain=os.path.join(d, "source.jsonl")), "hparams.filter_pretrain="),
    (lambda h, d: h.update(filter_pretrain={"paths": 7}), "hparams.filter_pretrain.paths=7"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "source.jsonl"), "epoch": 5}),
     "hparams.filter_pretrain"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "source.jsonl"), "val_fraction": 1.5}),
     "hparams.filter_pretrain.val_fraction=1.5"),
    (lambda h, d: h.update(paths_per_bucket=3), "= 9 paths; a path filter trained from scratch needs at least 10"),
    (lambda h, d: h.update(filter_pretrain={"paths": os.path.join(d, "source.jsonl")},
                           filter_init=os.path.join(d, "init.h5")), "give one initial filter, not both"),
])
def test_bad_pretrain_settings_stop_before_work(tiny_voc, tmp_path, mutate, needle):
    d = str(tmp_path)
    src = source_paths(os.path.join(d, "source.jsonl"))
    lines = open(src).read().splitlines()
    open(os.path.join(d, "few.jsonl"), "w").write("\n".join(lines[:5]) + "\n")
    bad = json.loads(lines[1])
    bad["arch"]["d"] = [9, 9, 9, 9, 9]
    open(os.path.join(d, "bad.jsonl"), "w").write("\n".join([lines[0], json.dumps(bad)] + lines[2:]) + "\n")
    train_path_filter(PathSet.read(src), epochs=1, ensemble=1, seed=0).filter.save(os.path.join(d, "init.h5"))
    out = os.path.join(d, "run")
    conf = experiment(tiny_voc, out)
    mutate(conf["hparams"], d)
    r = subprocess.run([BIN, "-f", write(d, conf, "exp.json")], capture_output=True, text=True, timeout=300, cwd=d)
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.strip() and "[nnabla][INFO]" not in ln]
    assert len(err) == 1 and needle in err[0], r.stderr[-2000:]
    assert not os.path.exists(os.path.join(out, "supernet"))
