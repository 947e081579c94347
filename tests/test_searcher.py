"""DetOFASearcher end to end on a tiny supernet (1/16 width, 64 px): budgets, constraints, pareto.json,
exported files, resume, bad options, and the ``search`` command on a run folder."""
import json
import os

import numpy as np
import pytest

from nnabla_nas_detofa.runners.launch import run_experiment

CFG = {"num_classes": 5, "width_mult": 0.0625, "divisor": 1}
SEARCH = {"generations": 2, "population": 8, "sample": 4}


def experiment(root, out, runner="DetOFASearcher", weights=None, **hp):
    h = {"epoch": 1, "batch_size_train": 4, "batch_size_valid": 4, "paths_per_bucket": 4, "n_buckets": 3,
         "bn_calib_images": 8, "seed": 0, "filter": {"epochs": 3, "batch_size": 4}}
    if runner == "DetOFASearcher":
        h.update(SEARCH)
    h.update(hp)
    net = dict(CFG)
    if weights:
        net["weights"] = weights
    return {"args": {"algorithm": runner, "context": "cpu", "output_path": out},
            "dataloader": {"detofa_voc": {"root": root, "train_split": "synth_train", "test_split": "synth_val",
                                          "input_size": 64, "num_classes": 5, "max_objs": 16, "num_workers": 0}},
            "network": {"detofa_resnet50": net}, "hparams": h}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Supernet weights of a fresh (seeded) tiny supernet, as a trained run would leave them."""
    import nnabla as nn

    from nnabla_nas_detofa.nets.supernet import DetOFASupernet
    nn.seed(3)
    path = str(tmp_path_factory.mktemp("w") / "supernet.h5")
    DetOFASupernet(space="ofa", **CFG).save_weights(path)
    return path


@pytest.fixture(scope="module")
def searched(tiny_voc, weights, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("search") / "out")
    conf = experiment(tiny_voc, out, weights=weights)
    pareto = run_experiment(conf)
    return out, conf, pareto


def _cfg():
    from nnabla_nas_detofa.space import SupernetConfig
    return SupernetConfig.from_dict(CFG)


def test_pareto_layout_budgets_and_constraints(searched, weights):
    from nnabla_nas_detofa.path_filter import PathFilter
    from nnabla_nas_detofa.space import Arch, get_space, mflops, param_count, space_buckets
    out, _, pareto = searched
    on_disk = json.load(open(os.path.join(out, "pareto.json")))
    assert on_disk == json.loads(json.dumps(pareto))
    assert set(on_disk) == {"format", "version", "metric", "metric_scale", "input_size", "weights", "training_run",
                            "search", "budgets", "fullnet", "seconds"}
    assert on_disk["format"] == "nnabla_nas_detofa.pareto" and on_disk["version"] == 1
    assert on_disk["metric"] == "mAP" and on_disk["input_size"] == 64 and on_disk["weights"] == weights
    assert on_disk["training_run"] is None          # the weights are not in a run folder
    assert set(on_disk["search"]) == {"algorithm", "population", "sample", "generations", "fitness", "seed",
                                      "pruned_space", "path_filter"}
    assert on_disk["search"]["path_filter"] == os.path.join(out, "paths", "path_filter.h5")   # trained here
    cfg = _cfg()
    buckets = space_buckets(get_space("ofa"), cfg, 64, 3)
    edges = buckets.edges
    # default budgets: the upper edges of the space's buckets, one per bucket
    assert [e["budget_mflops"] for e in on_disk["budgets"]] == pytest.approx(edges[1:], rel=1e-12)
    flt = PathFilter.load(on_disk["search"]["path_filter"])
    keys = {"budget_mflops", "bucket", "flops_range", "arch", "mflops", "params", "latency_ms", "fitness", "calls",
            "search_seconds", "test", "dir", "files"}
    for i, e in enumerate(on_disk["budgets"]):
        assert set(e) == keys and e["bucket"] == i and e["dir"] == f"budget_{i}"
        arch = Arch.from_dict(e["arch"])
        f = mflops(arch, cfg, 64)                    # the project's one FLOPs definition
        assert e["mflops"] == f and e["flops_range"] == [edges[i], e["budget_mflops"]]
        assert edges[i] <= f <= e["budget_mflops"]
        assert e["params"] == param_count(arch, cfg) and e["latency_ms"] is None
        # the fitness is the filter's score in the budget's bucket
        assert e["fitness"] == pytest.approx(float(flt.logits([arch], bucket=[i])[0]), abs=1e-5)
        assert json.load(open(os.path.join(out, e["dir"], "arch.json"))) == e["arch"]
        assert e["files"] == {"nnp": f"budget_{i}/detector.nnp", "onnx": f"budget_{i}/detector.onnx"}
        assert "mAP" in e["test"] and e["test"]["metric"] == "voc07"
        assert 0 < e["calls"] <= SEARCH["population"] * (SEARCH["generations"] + 1)
    full = on_disk["fullnet"]
    assert full["arch"] == get_space("ofa").extreme(True).to_dict() and full["mflops"] == buckets.hi
    for f in ("pareto.png", "summary.json"):
        assert os.path.isfile(os.path.join(out, f))
    s = json.load(open(os.path.join(out, "summary.json")))
    assert len(s["test_seconds_per_budget"]) == 3 and set(s["export_seconds_per_budget"][0]) == {"nnp", "onnx"}


def test_exported_files_run_and_agree(searched):
    """The .nnp runs in nnabla's NnpLoader, the ONNX file in onnxruntime, with the same outputs."""
    import nnabla as nn
    import onnxruntime as ort
    from nnabla.utils.nnp_graph import NnpLoader
    out, _, pareto = searched
    e = pareto["budgets"][1]
    x = np.random.RandomState(5).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    nnp = NnpLoader(os.path.join(out, e["files"]["nnp"]))
    name = nnp.get_network_names()[0]
    net = nnp.get_network(name, batch_size=1)
    (inp,) = net.inputs.values()
    inp.d = x
    outs = list(net.outputs.values())
    nn.forward_all(outs)
    sess = ort.InferenceSession(os.path.join(out, e["files"]["onnx"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    ref = {k: v.d.copy() for k, v in net.outputs.items()}
    onnx_names = [o.name for o in sess.get_outputs()]
    assert sorted(onnx_names) == sorted(ref)
    for n, g in zip(onnx_names, got):
        assert np.abs(g - ref[n]).max() <= 1e-4 * max(1.0, np.abs(ref[n]).max()), n


def test_a_killed_search_resumes_at_the_unfinished_budget(searched, tmp_path):
    out, conf, pareto = searched
    # budget 0 kept from before (marked), budget 2 lost its result: searched, measured and exported again
    r0 = os.path.join(out, "budget_0", "result.json")
    obj = json.load(open(r0))
    obj["entry"]["calls"] = 12345
    with open(r0, "w") as f:
        json.dump(obj, f)
    os.remove(os.path.join(out, "budget_2", "result.json"))
    os.remove(os.path.join(out, "budget_2", "detector.onnx"))
    again = run_experiment(conf)
    assert again["budgets"][0]["calls"] == 12345                      # not searched again
    for k in ("arch", "mflops", "fitness", "calls", "test", "files"):
        assert again["budgets"][2][k] == pareto["budgets"][2][k], k   # the same search and measurement
    assert again["budgets"][1] == pareto["budgets"][1]
    assert os.path.isfile(os.path.join(out, "budget_2", "detector.onnx"))
    obj["entry"]["calls"] = pareto["budgets"][0]["calls"]
    with open(r0, "w") as f:
        json.dump(obj, f)
    # a result of other settings is refused, not mixed in
    other = json.loads(json.dumps(conf))
    other["hparams"]["generations"] = 3
    with pytest.raises(ValueError, match="other search settings"):
        run_experiment(other)


@pytest.mark.parametrize("hp,msg", [
    ({"algorithm": "greedy"}, "hparams.algorithm"),
    ({"budgets": [1e9]}, "hparams.budgets[0]=1e+09: outside the space's FLOPs range"),
    ({"budgets": [0.5]}, "outside the space's FLOPs range"),
    ({"budgets": [2.0], "n_budgets": 2}, "give one of them"),
    ({"sample": 9}, "hparams.sample=9 exceeds hparams.population=8"),
    ({"max_latency_ms": 3.0}, "give both or neither"),
    ({"path_filter": "nope.h5"}, "hparams.path_filter='nope.h5': no such file"),
    ({"pruned_space": "nope.json"}, "hparams.pruned_space='nope.json': no such file"),
    ({"export": ["nnp", "zip"]}, "hparams.export[1]"),
    ({"generations": -1}, "hparams.generations"),
    ({"fitness": "ap"}, "hparams.fitness"),
])
def test_bad_options_are_one_line_errors_before_any_work(tmp_path, hp, msg):
    out = str(tmp_path / "out")
    with pytest.raises(ValueError) as err:
        run_experiment(experiment(str(tmp_path / "no_data"), out, **hp))
    assert msg in str(err.value) and "\n" not in str(err.value)
    assert not os.path.exists(out)   # nothing read, nothing written


def _tool(capsys, *argv):
    """(exit code, stdout lines, stderr lines) of ``python -m nnabla_nas_detofa ARGV``, in process."""
    from nnabla_nas_detofa.cli.tools import main_tools
    code = main_tools(list(argv))
    cap = capsys.readouterr()
    return code, cap.out.strip().splitlines(), cap.err.strip().splitlines()


def test_search_command_on_a_run_folder(tiny_voc, weights, tmp_path, capsys):
    """A path-filter run (weights, measurement sets, filter) searched from the command line."""
    run = str(tmp_path / "run")
    run_experiment(experiment(tiny_voc, run, runner="DetOFAPathFilterRunner", weights=weights,
                              repeatability_paths=0))
    out = str(tmp_path / "search")
    flt = os.path.join(run, "path_filter.h5")
    capsys.readouterr()
    code, _, err = _tool(capsys, "search", "--run", run, "--weights", weights, "--generations", "-1", "-o", out)
    assert code == 2 and len(err) == 1 and "--generations" in err[0]
    code, _, err = _tool(capsys, "search", "--run", run, "--weights", weights, "--budgets", "1e6", "-o", out)
    assert code == 2 and len(err) == 1 and "budgets[0]=1e+06: outside the space's FLOPs range" in err[0], err
    assert not os.path.exists(out)
    code, lines, err = _tool(capsys, "search", "--run", run, "--weights", weights, "--path-filter", flt,
                             "--n-budgets", "2", "--generations", "1", "--population", "4", "--sample", "2",
                             "--export", "nnp", "--no-fullnet", "-o", out)
    assert code == 0, err[-20:]
    line = json.loads(lines[-1])
    pareto = json.load(open(line["pareto"]))
    assert pareto["training_run"] == os.path.abspath(run) and pareto["weights"] == os.path.abspath(weights)
    assert pareto["search"]["path_filter"] == flt and pareto["search"]["generations"] == 1
    assert len(pareto["budgets"]) == 2 and pareto["fullnet"] is None
    assert all(set(e["files"]) == {"nnp"} for e in pareto["budgets"])
    # the run's fixed calibration set, not a new draw
    a = json.load(open(os.path.join(run, "measurement_sets.json")))
    b = json.load(open(os.path.join(out, "measurement_sets.json")))
    assert a["calib_ids"] == b["calib_ids"] and a["valid_ids"] == b["valid_ids"]


def test_registered_as_an_nnabla_nas_runner():
    import nnabla_nas.runner as tables

    from nnabla_nas_detofa.runners import RUNNERS, DetOFASearcher
    assert RUNNERS["DetOFASearcher"] is DetOFASearcher
    assert tables.DetOFASearcher is DetOFASearcher and "DetOFASearcher" in tables.__all__


def test_budget_plan_buckets_and_ranges():
    from nnabla_nas_detofa.schema import SchemaError
    from nnabla_nas_detofa.search.options import plan_budgets
    from nnabla_nas_detofa.space import Buckets
    b = Buckets(10.0, 40.0, 3)                      # edges 10, 20, 30, 40
    assert plan_budgets(None, None, b) == [(20.0, 0, (10.0, 20.0)), (30.0, 1, (20.0, 30.0)), (40.0, 2, (30.0, 40.0))]
    assert [t for t, _, _ in plan_budgets(None, 2, b)] == [25.0, 40.0]
    # a budget on an edge belongs to the bucket below it; the smallest path's FLOPs to bucket 0
    assert plan_budgets([30.0, 10.0, 31.0], None, b) == [(30.0, 1, (20.0, 30.0)), (10.0, 0, (10.0, 10.0)),
                                                         (31.0, 2, (30.0, 31.0))]
    for bad in ([9.0], [40.5]):
        with pytest.raises(SchemaError, match=r"budgets\[0\]=.*outside the space's FLOPs range \[10, 40\]"):
            plan_budgets(bad, None, b)


def test_detofa_search_block_is_checked_before_any_work(tmp_path):
    from nnabla_nas_detofa.runners.detofa import DetOFA
    from nnabla_nas_detofa.schema import SchemaError
    hp = {"epoch": 3, "warmup_epochs": 1, "batch_size_train": 4, "batch_size_valid": 4}
    assert DetOFA.check_hparams(hp)["search"]["generations"] == 500          # the search phase runs by default
    assert DetOFA.check_hparams(dict(hp, search=None))["search"] is None     # null: no search phase
    for search, msg in (({"generations": -1}, "hparams.search.generations"),
                        ({"path_filter": "x.h5"}, "hparams.search: unknown key 'path_filter'"),
                        ({"max_latency_ms": 2.0}, "hparams.search.latency_table and hparams.search.max_latency_ms")):
        with pytest.raises(SchemaError, match=msg.replace(".", r"\.")):
            DetOFA.check_hparams(dict(hp, search=search))
    out = str(tmp_path / "out")
    conf = experiment(str(tmp_path / "no_data"), out, runner="DetOFA", epoch=3, warmup_epochs=1,
                      search={"budgets": [1e5]})
    with pytest.raises(ValueError, match=r"hparams\.search\.budgets\[0\]=100000: outside"):
        run_experiment(conf)
    assert not os.path.exists(out)


def _latency_table(path, cfg, size=64, ms=1.0):
    """A table giving every layer of the space ``ms`` (so a path's latency = ms x its layer count)."""
    from nnabla_nas_detofa.search import LatencyTable
    from nnabla_nas_detofa.space import get_space, space_layers
    layers = {lay.key(): {"ms": ms, "mean_ms": ms, "std_ms": 0.0, "min_ms": ms, "n": 1}
              for lay in space_layers(get_space("ofa"), cfg, size)}
    LatencyTable(layers, "cpu", 1, size, cfg).save(path)
    return path


def test_parameter_and_latency_limits_hold(searched, tiny_voc, weights, tmp_path):
    from nnabla_nas_detofa.space import Arch, param_count, path_layers
    _, _, first = searched
    cfg = _cfg()
    # limits that the first search's path of budget 1 meets exactly (so they can be met)
    ref = Arch.from_dict(first["budgets"][1]["arch"])
    limit_p, limit_ms = param_count(ref, cfg) / 1e6, float(len(path_layers(ref, cfg, 64)))
    table = _latency_table(str(tmp_path / "latency.json"), cfg)
    out = str(tmp_path / "limits")
    conf = experiment(tiny_voc, out, weights=weights, path_filter=first["search"]["path_filter"],
                      algorithm="truncation", budgets=[first["budgets"][1]["budget_mflops"]], max_params=limit_p,
                      latency_table=table, max_latency_ms=limit_ms, export=[], test_fullnet=False)
    pareto = run_experiment(conf)
    (e,) = pareto["budgets"]
    arch = Arch.from_dict(e["arch"])
    assert e["params"] == param_count(arch, cfg) <= limit_p * 1e6
    assert e["latency_ms"] == pytest.approx(len(path_layers(arch, cfg, 64))) and e["latency_ms"] <= limit_ms
    assert e["files"] == {} and pareto["fullnet"] is None and pareto["search"]["algorithm"] == "truncation"
    # a table of other settings is refused before any work
    other = _latency_table(str(tmp_path / "latency96.json"), cfg, size=96)
    bad = experiment(tiny_voc, str(tmp_path / "bad"), weights=weights, latency_table=other, max_latency_ms=5.0)
    with pytest.raises(ValueError, match="hparams.latency_table: .*measured with input_size 96, not 64"):
        run_experiment(bad)
    assert not os.path.exists(str(tmp_path / "bad"))


def test_bucket_space_draws_from_its_bucket_deterministically():
    import random

    from nnabla_nas_detofa.pruning import PrunedSpace
    from nnabla_nas_detofa.search.bucket_space import BucketSpace
    from nnabla_nas_detofa.space import get_space, mflops, space_buckets
    cfg, space = _cfg(), get_space("ofa")
    b = space_buckets(space, cfg, 64, 5)
    full = PrunedSpace(space, cfg, 64, b, [{} for _ in range(5)])
    for k in (0, 4):   # the end buckets, which uniform draws of A rarely reach
        draws = [BucketSpace(full, k, block=16).sample(random.Random(7)) for _ in range(2)]
        assert draws[0] == draws[1]
        bs = BucketSpace(full, k, block=16)
        rng = random.Random(1)
        archs = [bs.sample(rng) for _ in range(40)]
        lo, hi = b.bounds(k)
        assert all(lo <= mflops(a, cfg, 64) <= hi and space.contains(a) for a in archs)
        assert len(set(archs)) > 20
