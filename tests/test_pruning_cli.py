"""``sample --space pruned_space.json [--filter W.h5]`` and ``prune``."""
import json
import random

import numpy as np
import pytest
from pruning_cases import SIZE, TINY, small_space

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.pruning import PrunedSpace, filter_id, path_thresholds
from nnabla_nas_detofa.space import Arch, get_space, mflops, space_buckets

NET = ["--width-mult", "0.125", "--divisor", "1"]


def run(capsys, argv):
    code = main_tools(argv)
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip().splitlines()


def _kept(sp, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(5):
        k = {}
        for (kind, i), v in sp.choices.items():
            if len(v) > 1 and rng.random() < 0.3:
                drop = rng.choice(v)
                k[f"{kind}{i}"] = [c for c in v if c != drop]
        out.append(k)
    return out


@pytest.fixture(scope="module")
def pruned_file(tmp_path_factory):
    from nnabla_nas_detofa.pruning import PruningError
    sp = small_space()
    for seed in range(50):   # random kept choices; the first seed that leaves no bucket empty
        try:
            pruned = PrunedSpace(sp, TINY, SIZE, space_buckets(sp, TINY, SIZE), _kept(sp, seed))
            pruned.estimate_size(draws=500)
            break
        except PruningError:
            continue
    path = tmp_path_factory.mktemp("ps") / "pruned_space.json"
    pruned.save(str(path))
    return pruned, str(path)


def _filters(d, space, seeds):
    """Untrained path filters (random weights: any scorer will do) for ``space``'s buckets."""
    from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig, default_vocabulary
    out = []
    for seed in seeds:
        cfg = PathFilterConfig(vocab=default_vocabulary(), buckets=space_buckets(space, TINY, SIZE),
                               supernet=TINY, input_size=SIZE, n_layers=1)
        flt = PathFilter(cfg, seed=seed)
        flt.save(str(d / f"{space.name}{seed}.h5"))
        out.append((flt, str(d / f"{space.name}{seed}.h5")))
    return out


@pytest.fixture(scope="module")
def filters(tmp_path_factory):
    return _filters(tmp_path_factory.mktemp("pf"), small_space(), (0, 1))


@pytest.fixture(scope="module")
def ps1_filter(tmp_path_factory):
    return _filters(tmp_path_factory.mktemp("pf"), get_space("ps1"), (0,))[0]


def test_sample_pruned_space_file(pruned_file, capsys):
    pruned, path = pruned_file
    code, out, err = run(capsys, ["sample", "--space", path, "-n", "40", "--seed", "3"])
    assert code == 0 and len(out) == 40, err
    lines = [json.loads(x) for x in out]
    for ln in lines:
        a = Arch.from_dict(ln["arch"])
        assert pruned.contains(a)
        assert ln["flops"] == mflops(a, TINY, SIZE) and ln["bucket"] == pruned.bucket_of(a)
    assert run(capsys, ["sample", "--space", path, "-n", "40", "--seed", "3", *NET, "--input-size", "64"])[1] == out
    assert run(capsys, ["sample", "--space", path, "-n", "40", "--seed", "4"])[1] != out
    # the named spaces keep working
    code, out, _ = run(capsys, ["sample", "--space", "ps1", "-n", "3", "--input-size", "64", *NET])
    assert code == 0 and len(out) == 3 and get_space("ps1").contains(Arch.from_dict(json.loads(out[0])["arch"]))


@pytest.mark.parametrize("argv,match", [
    (["--width-mult", "0.25"], "width_mult 0.125 in the file, 0.25 here"),
    (["--input-size", "96"], "input size 64, not 96"),
    (["--mode", "decision"], "sampled uniformly"),
    (["--filter", "x.h5"], "no path-pruning thresholds"),
])
def test_sample_pruned_space_refusals(pruned_file, capsys, argv, match):
    _, path = pruned_file
    code, out, err = run(capsys, ["sample", "--space", path, *argv])
    assert code == 2 and len(err) == 1 and match in err[0] and not out


def test_sample_missing_file_and_filter_without_file(capsys, tmp_path):
    code, _, err = run(capsys, ["sample", "--space", str(tmp_path / "none.json")])
    assert code == 2 and "none.json" in err[0] and "no such pruned space file" in err[0]
    code, _, err = run(capsys, ["sample", "--space", "ofa", "--filter", "x.h5"])
    assert code == 2 and "--space FILE" in err[0]


def test_sample_with_filter_applies_thresholds(pruned_file, filters, capsys, tmp_path):
    pruned, _ = pruned_file
    (flt, h5), (_, other) = filters
    pruned = PrunedSpace.load(pruned_file[1])
    pruned.thresholds = path_thresholds(pruned, flt, 0.25, n=200, rng=0, scorer_id=filter_id(h5))
    path = str(tmp_path / "with_thr.json")
    pruned.save(path)
    code, out, err = run(capsys, ["sample", "--space", path, "--filter", h5, "-n", "30"])
    assert code == 0, err
    for ln in map(json.loads, out):
        a = Arch.from_dict(ln["arch"])
        want = flt.score([a], bucket=[ln["bucket"]])[0]
        assert pruned.contains(a) and ln["score"] == pytest.approx(want, abs=1e-6)
        assert ln["score"] >= pruned.thresholds.values[ln["bucket"]] - 1e-6
    code, _, err = run(capsys, ["sample", "--space", path, "--filter", other])
    assert code == 2 and "not the path filter the thresholds" in err[0]


def test_prune_command_writes_a_loadable_pruned_space(ps1_filter, capsys, tmp_path):
    flt, h5 = ps1_filter        # ps1 (depths only): 14 operations, a quick run
    out = str(tmp_path / "pruned_space.json")
    code, lines, err = run(capsys, ["prune", "--filter", h5, "--space", "ps1", "--n", "5", "--n-threshold", "40",
                                    "--r-op1", "0.1", "--r-op2", "0.2", "-o", out])
    assert code == 0, err
    summary = json.loads(lines[0])
    assert summary["strategy"] == "flops_score_all" and 0 < summary["ratio"] < 1
    p = PrunedSpace.load(out, TINY, SIZE)
    assert p.strategy["r_op1"] == 0.1 and p.strategy["r_op2"] == 0.2 and p.space == get_space("ps1")
    assert summary["pruned_per_bucket"] == [len(x) for x in p.strategy["pruned"]] and max(summary["pruned_per_bucket"])
    assert p.thresholds.scorer_id["sha256"] == filter_id(h5)["sha256"] and p.thresholds.n == [40] * 5
    code, lines, err = run(capsys, ["sample", "--space", out, "--filter", h5, "-n", "5"])
    assert code == 0 and len(lines) == 5
    code, _, err = run(capsys, ["prune", "--filter", h5, "--space", "ps1", "--input-size", "96", "-o", out])
    assert code == 2 and "trained at input size 64" in err[0]
    code, _, err = run(capsys, ["prune", "--filter", h5, "--space", "ps1", "--strategy", "flops", "--r-op", "1.2",
                                "-o", out])
    assert code == 2 and "r_op=1.2" in err[0]
    assert np.isfinite(summary["sampler_acceptance"])
