"""``python -m nnabla_nas_detofa path-filter train | eval | score``."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.path_filter import PathFilter, SyntheticTask, synthetic_pathset
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
NET = ["--input-size", "64", "--width-mult", "0.125", "--divisor", "1"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pf")
    task = SyntheticTask(0)
    synthetic_pathset(task, get_space("ofa"), CFG, SIZE, 8, seed=1).write(str(d / "train.jsonl"))
    synthetic_pathset(task, get_space("ofa"), CFG, SIZE, 6, seed=2).write(str(d / "test.jsonl"))
    return d


@pytest.fixture(scope="module")
def trained(files):
    out = files / "run"
    rc = main_tools(["path-filter", "train", "--paths", str(files / "train.jsonl"), "--test-paths",
                     str(files / "test.jsonl"), "--epochs", "2", "--batch-size", "8", "--seed", "1", "--ensemble",
                     "1", *NET, "-o", str(out)])
    assert rc == 0
    return out


def test_train_ensemble_with_and_without_bagging(files, tmp_path):
    for extra, bagging in (([], True), (["--no-bagging"], False)):
        out = tmp_path / ("bag" if bagging else "same")
        assert main_tools(["path-filter", "train", "--paths", str(files / "train.jsonl"), "--epochs", "1",
                           "--batch-size", "8", "--ensemble", "2", *extra, *NET, "-o", str(out)]) == 0
        cfg = json.loads((out / "path_filter.json").read_text())
        assert cfg["n_members"] == 2 and cfg["meta"]["bagging"] is bagging


def test_train_writes_weights_config_and_quality(trained, capsys):
    assert {p.name for p in trained.iterdir()} == {"path_filter.h5", "path_filter.json", "quality.json"}
    q = json.loads((trained / "quality.json").read_text())
    assert q["validation"]["n"] == 10 and q["test"]["n"] == 30
    assert q["test"]["held_out"] is True and q["test"]["computed_on"].startswith("--test-paths")
    assert q["validation"]["held_out"] is False and "selected the checkpoint" in q["validation"]["computed_on"]
    assert q["training"]["n_test"] == 0 and q["training"]["stopped"] in ("epochs", "patience")
    assert "flops_only" in q["validation"] and set(q["test"]["weak"]) == {"0.2", "0.25", "0.3", "0.4"}
    assert len(q["training"]["history"]) == 3 and q["training"]["ablation"] == []
    cfg = json.loads((trained / "path_filter.json").read_text())
    assert cfg["input_size"] == 64 and cfg["supernet"]["divisor"] == 1
    lo, hi = mflops(get_space("ofa").extreme(False), CFG, SIZE), mflops(get_space("ofa").extreme(True), CFG, SIZE)
    assert cfg["buckets"] == {"lo": lo, "hi": hi, "n": 5}  # the space's range, not the file's


def test_eval_prints_report(trained, files, capsys):
    capsys.readouterr()
    assert main_tools(["path-filter", "eval", "--paths", str(files / "test.jsonl"),
                       "--weights", str(trained / "path_filter.h5")]) == 0
    rep = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "quality.json").read_text())["test"]
    assert rep["kendall_tau_within"] == pytest.approx(saved["kendall_tau_within"])
    assert rep["weak"]["0.25"] == saved["weak"]["0.25"]


def test_score_in_order_with_and_without_flops(trained, files, capsys):
    rng = __import__("random").Random(3)
    archs = [get_space("ofa").sample(rng) for _ in range(4)]
    given = mflops(archs[1], CFG, SIZE) * 1.01  # a given "flops" is used as is
    lines = [json.dumps({"arch": archs[0].to_dict(), "id": "a"}), json.dumps({"arch": archs[1].to_dict(),
             "flops": given}), "", json.dumps(archs[2].to_dict()), json.dumps({"arch": archs[3].to_dict()})]
    p = files / "archs.jsonl"
    p.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main_tools(["path-filter", "score", "--archs", str(p), "--weights", str(trained / "path_filter.h5")]) == 0
    out = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(out) == 4 and out[0]["id"] == "a"
    assert [o["arch"] for o in out] == [a.to_dict() for a in archs]
    flops = [mflops(archs[0], CFG, SIZE), given, mflops(archs[2], CFG, SIZE), mflops(archs[3], CFG, SIZE)]
    assert [o["flops"] for o in out] == pytest.approx(flops)
    flt = PathFilter.load(str(trained / "path_filter.h5"))
    np.testing.assert_allclose([o["score"] for o in out], flt.score(archs, flops=flops), rtol=1e-12)
    assert [o["bucket"] for o in out] == flt.config.buckets.indices(flops).tolist()


def test_ablations_and_finetune(trained, files, capsys):
    out = files / "abl"
    assert main_tools(["path-filter", "train", "--paths", str(files / "train.jsonl"), "--epochs", "1",
                       "--batch-size", "8", "--ablation", "no-budget", "no-block-pe", "--ablation",
                       "no-flops-bounded", "-o", str(out)]) == 0
    cfg = json.loads((out / "path_filter.json").read_text())
    assert cfg["budget"] is False and cfg["block_pe"] is False and cfg["meta"]["flops_bounded"] is False
    assert cfg["input_size"] is None
    q = json.loads((out / "quality.json").read_text())
    assert q["training"]["ablation"] == ["no-block-pe", "no-budget", "no-flops-bounded"]
    ft = files / "ft"
    assert main_tools(["path-filter", "train", "--paths", str(files / "test.jsonl"), "--init",
                       str(trained / "path_filter.h5"), "--epochs", "1", "--batch-size", "8", "-o", str(ft)]) == 0
    cfg = json.loads((ft / "path_filter.json").read_text())
    assert cfg["meta"]["fine_tuned"] is True and cfg["input_size"] == 64


def _err(capsys, argv):
    capsys.readouterr()
    assert main_tools(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "error: " in err and "\n" not in err
    return err


def test_errors_are_one_line(trained, files, capsys, tmp_path):
    w = str(trained / "path_filter.h5")
    assert "no.jsonl" in _err(capsys, ["path-filter", "eval", "--paths", str(tmp_path / "no.jsonl"), "--weights", w])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(open(files / "train.jsonl").readline() + '{"arch": {"d": [0]}, "flops": 1, "val_loss": 1}\n')
    assert f"{bad}:2:" in _err(capsys, ["path-filter", "eval", "--paths", str(bad), "--weights", w])
    assert f"{bad}:2:" in _err(capsys, ["path-filter", "train", "--paths", str(bad), "-o", str(tmp_path / "o")])
    assert "no such file" in _err(capsys, ["path-filter", "eval", "--paths", str(files / "train.jsonl"),
                                           "--weights", str(tmp_path / "none.h5")])
    # a filter trained without --input-size cannot compute FLOPs for lines that lack them
    from nnabla_nas_detofa.path_filter import PathFilterConfig
    from nnabla_nas_detofa.path_filter.model import default_vocabulary
    from nnabla_nas_detofa.space import Buckets
    no_net = str(tmp_path / "nonet.h5")
    PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=Buckets(1.0, 9.0))).save(no_net)
    arch = tmp_path / "a.jsonl"
    arch.write_text(json.dumps({"arch": get_space("ofa").extreme(True).to_dict(), "flops": 5.0}) + "\n"
                    + json.dumps(get_space("ofa").extreme(False).to_dict()) + "\n")
    assert f"{arch}:2: no 'flops'" in _err(capsys, ["path-filter", "score", "--archs", str(arch), "--weights", no_net])
    assert "--input-size=50" in _err(capsys, ["path-filter", "train", "--paths", str(files / "train.jsonl"),
                                              "--input-size", "50", "-o", str(tmp_path / "o")])
    one = tmp_path / "one.jsonl"
    one.write_text(open(files / "train.jsonl").readline())
    assert "at least" in _err(capsys, ["path-filter", "train", "--paths", str(one), "-o", str(tmp_path / "o")])
    assert "unknown search space" in _err(capsys, ["path-filter", "train", "--paths", str(one), "--space", "x",
                                                   "-o", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_train_without_test_paths_reports_on_a_test_split(files, capsys):
    out = files / "split"
    capsys.readouterr()
    assert main_tools(["path-filter", "train", "--paths", str(files / "train.jsonl"), "--epochs", "1",
                       "--batch-size", "8", "--test-fraction", "0.25", "-o", str(out)]) == 0
    line = json.loads(capsys.readouterr().out)
    q = json.loads((out / "quality.json").read_text())
    assert q["test"]["n"] == 10 and q["test"]["held_out"] is True
    assert q["test"]["computed_on"].startswith("test split: 10 paths") and line["computed_on"] == q["test"]["computed_on"]
    test_idx, val_idx = set(q["training"]["test_index"]), set(q["training"]["val_index"])
    assert len(test_idx) == 10 and not test_idx & val_idx
    # the reported numbers are the filter's on exactly those paths
    from nnabla_nas_detofa.path_filter import PathSet, evaluate
    ps = PathSet.read(str(files / "train.jsonl"))
    flt = PathFilter.load(str(out / "path_filter.h5"))
    rep = evaluate(flt, ps.subset(sorted(test_idx)))
    assert rep["kendall_tau_within"] == pytest.approx(q["test"]["kendall_tau_within"])


def test_bad_flag_values_stop_before_any_work(files, capsys, tmp_path):
    base = ["path-filter", "train", "--paths", str(files / "train.jsonl"), "-o", str(tmp_path / "o")]
    for flag, value in (("--lr", "nan"), ("--lr", "0"), ("--wide-lr", "inf"), ("--patience", "0"),
                        ("--epochs", "0"), ("--batch-size", "1"), ("--ensemble", "0"), ("--test-fraction", "1.5"),
                        ("--val-fraction", "0"), ("--weight-decay", "-1")):
        capsys.readouterr()
        assert main_tools(base + [flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and (f"argument {flag}: '{value}'" in err or "train.epochs=0" in err), err
    err = _err(capsys, base + ["--val-fraction", "0.5", "--test-fraction", "0.5"])
    assert "--val-fraction=0.5 + --test-fraction=0.5" in err
    # checked before the path set is read: a missing file is not what is reported
    assert main_tools(["path-filter", "train", "--paths", str(tmp_path / "none.jsonl"), "--lr", "nan",
                       "-o", str(tmp_path / "o")]) == 2
    assert "argument --lr: 'nan'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_baseline_command(files, capsys, tmp_path):
    from nnabla_nas_detofa.path_filter import PathSet, evaluate, fit_baseline
    from nnabla_nas_detofa.path_filter.train import resolve_buckets
    train, test = PathSet.read(str(files / "train.jsonl")), PathSet.read(str(files / "test.jsonl"))
    capsys.readouterr()
    out = tmp_path / "ridge"
    assert main_tools(["path-filter", "baseline", "--kind", "ridge", "--paths", str(files / "train.jsonl"),
                       "--test-paths", str(files / "test.jsonl"), "-o", str(out)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert json.loads((out / "quality.json").read_text()) == rep
    buckets = resolve_buckets(train)
    ref = evaluate(fit_baseline("ridge", train, buckets=buckets).ranker, test, buckets=buckets)
    assert rep["kendall_tau_within"] == pytest.approx(ref["kendall_tau_within"])
    assert rep["weak"]["0.25"] == ref["weak"]["0.25"] and rep["n"] == 30 and rep["held_out"] is True
    assert rep["computed_on"].startswith("--test-paths") and rep["baseline"]["kind"] == "ridge"
    # the same report format as `path-filter eval`
    assert {"n", "bucket_sizes", "kendall_tau", "kendall_tau_bucket", "kendall_tau_within", "weak",
            "flops_only"} <= set(rep)
    assert main_tools(["path-filter", "baseline", "--kind", "flops", "--paths", str(files / "test.jsonl"),
                       *NET]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["computed_on"].startswith("test split: ") and rep["held_out"] is True
    assert rep["kendall_tau_within"] == rep["flops_only"]["kendall_tau_within"]
    assert main_tools(["path-filter", "baseline", "--kind", "mlp", "--paths", str(files / "train.jsonl"),
                       "--test-fraction", "0.25"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n"] == 10 and rep["baseline"]["hidden"] == [400, 400, 400]
    assert "argument --test-fraction: '-0.1'" in _err(capsys, ["path-filter", "baseline", "--kind", "ridge", "--paths",
                                                   str(files / "train.jsonl"), "--test-fraction", "-0.1"])


def test_module_entry_point(trained, files):
    r = subprocess.run([sys.executable, "-m", "nnabla_nas_detofa", "path-filter", "eval", "--paths",
                        str(files / "test.jsonl"), "--weights", str(trained / "path_filter.h5")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n"] == 30
