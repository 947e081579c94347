"""DetOFAPathFilterRunner end to end on a tiny supernet: outputs, and labels resumed after a kill."""
import json
import os

from nnabla_nas_detofa.path_filter import PathFilter, PathSet, evaluate
from nnabla_nas_detofa.path_filter.quality import json_safe
from nnabla_nas_detofa.runners.launch import run_experiment


def experiment(root, out, **hp):
    h = {"epoch": 1, "batch_size_train": 4, "batch_size_valid": 4, "mini_batch_train": 4, "mini_batch_valid": 4,
         "paths_per_bucket": 4, "n_buckets": 3, "bn_calib_images": 8, "seed": 0,
         "filter": {"epochs": 3, "batch_size": 4}}
    h.update(hp)
    return {
        "args": {"algorithm": "DetOFAPathFilterRunner", "context": "cpu", "output_path": out},
        "dataloader": {"detofa_voc": {"root": root, "train_split": "synth_train", "test_split": "synth_val",
                                      "input_size": 64, "num_classes": 5, "max_objs": 16, "num_workers": 0}},
        "network": {"detofa_resnet50": {"num_classes": 5, "width_mult": 0.0625, "divisor": 1}},
        "hparams": h,
    }


def test_runner_writes_pathset_filter_and_report(tiny_voc, tmp_path):
    out = str(tmp_path / "pf")
    run_experiment(experiment(tiny_voc, out))
    ps = PathSet.read(os.path.join(out, "paths.jsonl"))
    assert len(ps) == 12
    buckets = [r.extra["bucket"] for r in ps]
    assert sorted(set(buckets)) == [0, 1, 2] and all(buckets.count(b) == 4 for b in range(3))
    assert all(v > 0 for v in ps.val_loss)
    flt = PathFilter.load(os.path.join(out, "path_filter.h5"))
    scores = flt.score(ps.archs, flops=ps.flops)
    assert scores.shape == (12,) and ((scores > 0) & (scores < 1)).all()
    report = json.load(open(os.path.join(out, "quality.json")))
    assert report["paths"] == 12 and report["quality_on_validation_split"]["held_out"] is False
    # the quality is on the test split (one path per bucket), which neither trained nor selected the filter
    q = report["quality"]
    assert q["held_out"] is True and q["n"] == 3 and q["computed_on"].startswith("test split: 3 paths")
    test, val = set(report["test_index"]), set(report["val_index"])
    assert len(test) == 3 and not test & val
    rep = evaluate(flt, ps.subset(sorted(test)), buckets=flt.config.buckets)
    assert rep["kendall_tau"] == q["kendall_tau"] and json.dumps(json_safe(rep["weak"])) == json.dumps(q["weak"])
    # the baselines on the same paths
    assert set(report["baselines"]) == {"flops", "ridge", "mlp"}
    assert all(b["n"] == 3 and b["computed_on"] == q["computed_on"] for b in report["baselines"].values())
    assert report["training"]["n_test"] == 3
    assert not os.path.exists(os.path.join(out, "paths.partial.jsonl"))


def test_labelling_resumes_from_partial_file(tiny_voc, tmp_path):
    out = str(tmp_path / "pf")
    conf = experiment(tiny_voc, out)
    run_experiment(conf)
    first = PathSet.read(os.path.join(out, "paths.jsonl"))
    # a killed run left 4 measured paths (marked with an impossible loss) and half a line
    os.remove(os.path.join(out, "paths.jsonl"))
    lines = [json.dumps({**r.to_obj(), "val_loss": 123.0 + i, "bucket": r.extra["bucket"]})
             for i, r in enumerate(first.records[:4])]
    with open(os.path.join(out, "paths.partial.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n" + '{"arch": {"d": [0')
    run_experiment(conf)
    again = PathSet.read(os.path.join(out, "paths.jsonl"))
    assert list(again.val_loss[:4]) == [123.0, 124.0, 125.0, 126.0]     # reused, not measured again
    assert not set(again.val_loss[4:]) & {123.0, 124.0, 125.0, 126.0}  # the rest measured
    assert [a.key() for a in again.archs] == [a.key() for a in first.archs]


def test_filter_options_are_checked_before_any_work(tmp_path):
    import pytest
    from nnabla_nas_detofa.path_filter import train_path_filter
    from nnabla_nas_detofa.runners.path_filter_runner import FILTER_OPTIONS, DetOFAPathFilterRunner
    from nnabla_nas_detofa.runners.schema import SchemaError
    import inspect
    # every option is a keyword of train_path_filter
    params = inspect.signature(train_path_filter).parameters
    assert set(FILTER_OPTIONS) <= set(params)
    common = experiment("root", "out")["hparams"]

    def check(extra):
        return DetOFAPathFilterRunner.check_hparams(dict(common, **extra))

    hp = check({"filter": {"lr": 1e-3}})
    assert hp["filter"]["test_fraction"] == 0.2 and hp["filter"]["patience"] == params["patience"].default
    for bad, match in (({"lr": float("nan")}, "hparams.filter.lr=nan"), ({"epochs": 0}, "hparams.filter.epochs=0"),
                       ({"patience": 0}, "hparams.filter.patience=0"), ({"lrr": 1}, "did you mean 'lr'"),
                       ({"test_fraction": 0.9}, "hparams.filter.test_fraction=0.9"),
                       ({"select": "x"}, "hparams.filter.select")):
        with pytest.raises(SchemaError, match=match.replace("(", r"\(")):
            check({"filter": bad})
    from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig
    from nnabla_nas_detofa.path_filter.model import default_vocabulary
    from nnabla_nas_detofa.space import Buckets
    w = str(tmp_path / "w.h5")
    PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=Buckets(1.0, 9.0, 3))).save(w)  # n_buckets 3
    assert check({"filter": {"epochs": 0}, "init": w})["filter"]["epochs"] == 0  # fine-tuning: allowed
    with pytest.raises(SchemaError, match="hparams.init: .*none.h5: no such file"):
        check({"init": str(tmp_path / "none.h5")})
    with pytest.raises(SchemaError, match="hparams.baselines"):
        check({"baselines": ["svm"]})
    # from scratch the filter needs 10 paths; a fine-tuning may have fewer
    with pytest.raises(SchemaError, match=r"hparams.paths_per_bucket=3 x hparams.n_buckets=3 = 9 paths"):
        check({"paths_per_bucket": 3, "n_buckets": 3})
    assert check({"paths_per_bucket": 3, "n_buckets": 3, "init": w})["paths_per_bucket"] == 3


def _pretrained(tmp_path, name="pre.h5", vocab=None, n_buckets=3, **kw):
    """A filter file as a pre-training would leave it; its vocabulary in another order than a new
    filter's (the token embedding rows follow it, so fine-tuning must keep it)."""
    import numpy as np
    from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig
    from nnabla_nas_detofa.path_filter.model import default_vocabulary
    from nnabla_nas_detofa.space import Buckets
    v = list(default_vocabulary())
    vocab = vocab if vocab is not None else [v[0]] + v[:0:-1]
    flt = PathFilter(PathFilterConfig(vocab=vocab, buckets=Buckets(1.0, 9.0, n_buckets), wide=True, **kw), seed=5)
    rng = np.random.RandomState(0)
    flt.set_state({k: a + 0.05 * rng.randn(*a.shape).astype(np.float32) for k, a in flt.state().items()})
    path = str(tmp_path / name)
    flt.save(path)
    return path, flt


def test_runner_fine_tunes_a_pretrained_filter_and_keeps_its_vocabulary(tiny_voc, tmp_path):
    import numpy as np
    pre_path, pre = _pretrained(tmp_path)
    out = str(tmp_path / "pf")
    # epochs 0: fine-tuning keeps its start, so the run's filter is the pre-trained one on the run's buckets
    run_experiment(experiment(tiny_voc, out, init=pre_path, repeatability_paths=0, baselines=["flops"],
                              filter={"epochs": 0, "batch_size": 4, "ensemble": 1}))
    flt = PathFilter.load(os.path.join(out, "path_filter.h5"))
    assert flt.config.vocab == pre.config.vocab and flt.config.wide
    assert flt.config.meta["fine_tuned"] is True
    assert (flt.config.buckets.lo, flt.config.buckets.hi) != (1.0, 9.0) and flt.config.buckets.n == 3
    state, start = flt.state(), pre.state()
    assert set(state) == set(start) and all(np.array_equal(state[k], start[k]) for k in state)
    ps = PathSet.read(os.path.join(out, "paths.jsonl"))
    b = flt.config.buckets.indices(ps.flops)
    assert np.array_equal(flt.score(ps.archs, bucket=b), pre.score(ps.archs, bucket=b))
    report = json.load(open(os.path.join(out, "quality.json")))
    assert report["fine_tuned_from"] == pre_path and report["best_epoch"] == 0
    # and training from it moves the weights but keeps the vocabulary
    out2 = str(tmp_path / "pf2")
    run_experiment(experiment(tiny_voc, out2, init=pre_path, repeatability_paths=0, baselines=["flops"],
                              filter={"epochs": 2, "patience": 5, "batch_size": 4, "select": "loss"}))
    flt2 = PathFilter.load(os.path.join(out2, "path_filter.h5"))
    assert flt2.config.vocab == pre.config.vocab
    report2 = json.load(open(os.path.join(out2, "quality.json")))
    assert report2["fine_tuned_from"] == pre_path
    if report2["best_epoch"] > 0:
        assert any(not np.array_equal(flt2.state()[k], start[k]) for k in start)


def test_a_pretrained_filter_that_does_not_fit_fails_in_one_line_before_any_work(tiny_voc, tmp_path):
    import pytest
    from nnabla_nas_detofa.path_filter.model import default_vocabulary
    from nnabla_nas_detofa.runners.detofa import DetOFA
    from nnabla_nas_detofa.runners.path_filter_runner import DetOFAPathFilterRunner
    from nnabla_nas_detofa.runners.schema import SchemaError
    v = list(default_vocabulary())
    narrow, _ = _pretrained(tmp_path, "narrow.h5", vocab=[t for t in v if not t.startswith("W1.0_")])
    no_pe, _ = _pretrained(tmp_path, "no_pe.h5", block_pe=False)
    five, _ = _pretrained(tmp_path, "five.h5", n_buckets=5)
    common = experiment("root", "out")["hparams"]
    detofa = {k: common[k] for k in ("batch_size_train", "batch_size_valid", "mini_batch_train", "mini_batch_valid",
                                     "seed", "bn_calib_images")}
    detofa.update(epoch=2, warmup_epochs=1, n_buckets=3)
    cases = ((DetOFAPathFilterRunner, dict(common, init=narrow), r"hparams.init=.*narrow.h5: its vocabulary "
              r"\(\d+ tokens\) lacks \d+ token\(s\) of the target paths: W1.0_E"),
             (DetOFAPathFilterRunner, dict(common, init=no_pe, filter={"block_pe": True}),
              "hparams.init=.*no_pe.h5: block_pe=True but the initial filter was trained with block_pe=False"),
             (DetOFAPathFilterRunner, dict(common, init=no_pe, filter={"ensemble": 2}), None),
             (DetOFAPathFilterRunner, dict(common, init=five), "hparams.init=.*five.h5: n_buckets=3 but the initial "
              "filter was trained on 5 FLOPs buckets"),
             (DetOFA, dict(detofa, filter_init=narrow), r"hparams.filter_init=.*narrow.h5: its "
              "vocabulary"),
             (DetOFA, dict(detofa, filter_init=str(tmp_path / "none.h5")),
              "hparams.filter_init: .*none.h5: no such file"))
    for cls, hp, match in cases:
        if match is None:  # a one-network filter fine-tunes into an ensemble: every member starts from it
            cls.check_hparams(hp)
            continue
        with pytest.raises(SchemaError, match=match) as err:
            cls.check_hparams(hp)
        assert "\n" not in str(err.value)
    # through the launcher: refused before any path is labelled
    out = str(tmp_path / "pf")
    from nnabla_nas_detofa.runners.launch import ExperimentError
    with pytest.raises(ExperimentError, match="^experiment: hparams.init=.*its vocabulary") as err:
        run_experiment(experiment(tiny_voc, out, init=narrow))
    assert "\n" not in str(err.value)
    assert not os.path.exists(os.path.join(out, "paths.partial.jsonl"))
