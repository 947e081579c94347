"""The DetOFA runner end to end on a tiny supernet: every phase's files, the figures, and a run
killed with SIGKILL in the middle of labelling or of path-pruned training that resumes to exactly
the end of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nnabla_nas_detofa.path_filter import PathSet
from nnabla_nas_detofa.pruning import PrunedSpace

BIN = os.path.join(os.path.dirname(sys.executable), "nnabla_nas")


def experiment(root, out, **hp):
    h = {"epoch": 3, "warmup_epochs": 1, "batch_size_train": 4, "batch_size_valid": 4, "print_frequency": 5,
         "seed": 0, "paths_per_bucket": 4, "n_buckets": 3, "bn_calib_images": 8, "checkpoint_every": 3,
         "filter": {"epochs": 3, "batch_size": 4}, "repeatability_paths": 4, "figure_paths_per_bucket": 2,
         "pruning": {"n": 10, "n_threshold": 20, "size_draws": 200},
         "search": {"generations": 1, "population": 6, "sample": 3, "export": ["nnp"]}}
    h.update(hp)
    return {"args": {"algorithm": "DetOFA", "context": "cpu", "output_path": out},
            "dataloader": {"detofa_voc": {"root": root, "train_split": "synth_train", "test_split": "synth_val",
                                          "input_size": 64, "num_classes": 5, "max_objs": 16, "num_workers": 0}},
            "network": {"detofa_resnet50": {"num_classes": 5, "width_mult": 0.0625, "divisor": 1}},
            "optimizer": {"train": {"name": "Adam", "lr": 1e-3}},
            "hparams": h}


def write(tmp, conf, name):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        json.dump(conf, f)
    return p


@pytest.fixture(scope="module")
def reference(tiny_voc, tmp_path_factory):
    """One uninterrupted run (through the console script, as the killed runs)."""
    tmp = str(tmp_path_factory.mktemp("detofa"))
    out = os.path.join(tmp, "ref")
    r = subprocess.run([BIN, "-f", write(tmp, experiment(tiny_voc, out), "ref.json")], capture_output=True,
                       text=True, timeout=900, cwd=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_every_phase_writes_its_files(reference):
    out = reference
    for f in ("run.json", "experiment.json", "measurement_sets.json", "phases.json", "summary.json",
              "supernet/warmup.h5", "supernet/supernet.h5", "supernet/summary.json", "paths/paths.jsonl",
              "paths/path_filter.h5", "paths/quality.json", "pruning/pruned_space.json", "pruning/pruning.json",
              "pruning/fig7_operation_scores.png", "pruning/fig4_kept_paths.png", "paths_final/paths.jsonl",
              "paths_final/path_filter.h5", "fig6_val_loss.png", "fig6_paths.json", "search/pareto.json",
              "search/pareto.png", "search/budget_0/arch.json", "search/budget_0/detector.nnp"):
        assert os.path.isfile(os.path.join(out, f)), f
    s = json.load(open(os.path.join(out, "summary.json")))
    phases = s["phases"]
    assert set(phases) == {"warmup", "paths", "pruning", "pruned_training", "paths_final", "figures", "search"}
    assert all(p["done"] and p["seconds"] > 0 for p in phases.values())
    ratio = s["pruned_space"]["size_estimate"]["ratio"]
    assert 0 < ratio < 1
    assert 0 < s["path_pruning_acceptance"] <= 1
    assert 0 <= s["sampling_share_of_step"] < 1
    assert set(s["test"]) == {"min", "max"}
    # the final paths come from the pruned space, and the test paths are its extremes
    pruned = PrunedSpace.load(os.path.join(out, "pruning", "pruned_space.json"))
    final = PathSet.read(os.path.join(out, "paths_final", "paths.jsonl"))
    assert all(pruned.contains(r.arch) for r in final)
    assert pruned.contains(s["test"]["min"]["arch"]) and pruned.contains(s["test"]["max"]["arch"])
    hist = json.load(open(os.path.join(out, "supernet", "summary.json")))["history"]
    assert [h["space"] for h in hist] == ["ofa", "pruned", "pruned"]
    assert hist[1]["sampler"]["path_pruning"] and hist[1]["sampler"]["paths"] == hist[1]["steps"]
    fig6 = json.load(open(os.path.join(out, "fig6_paths.json")))
    assert {r["space"] for r in fig6} == {"A", "pruned"}
    # the search ran on the pruned space with the final filter, one budget per bucket
    pareto = json.load(open(os.path.join(out, "search", "pareto.json")))
    assert pareto["search"]["path_filter"] == os.path.join(out, "paths_final", "path_filter.h5")
    assert pareto["search"]["pruned_space"] == os.path.join(out, "pruning", "pruned_space.json")
    assert pareto["training_run"] == out and pareto["weights"] == os.path.join(out, "supernet", "supernet.h5")
    assert len(pareto["budgets"]) == 3 and all(pruned.contains(e["arch"]) for e in pareto["budgets"])
    assert s["search"]["pareto"] == os.path.join(out, "search", "pareto.json")
    assert s["search"]["seconds"] == phases["search"]["seconds"] and len(s["search"]["budgets"]) == 3


def _kill_when(cmd, cwd, ready, timeout=600):
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None and not ready():
        time.sleep(0.1)
    killed = p.poll() is None
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    return killed


def _lines(path):
    return sum(1 for _ in open(path)) if os.path.isfile(path) else 0


def _epoch(out):
    path = os.path.join(out, "supernet", "checkpoint", "checkpoint.json")
    try:
        return json.load(open(path))["global_step"]
    except (OSError, ValueError):
        return -1


@pytest.mark.parametrize("where", ["labelling", "pruned_training", "search"])
def test_killed_run_resumes_to_the_uninterrupted_end(reference, tiny_voc, tmp_path, where):
    out = str(tmp_path / "run")
    exp = write(str(tmp_path), experiment(tiny_voc, out), "exp.json")
    if where == "labelling":
        ready = lambda: _lines(os.path.join(out, "paths", "paths.partial.jsonl")) >= 3  # noqa: E731
    elif where == "search":
        ready = lambda: os.path.isfile(os.path.join(out, "search", "budget_0", "result.json"))  # noqa: E731
    else:
        steps_per_epoch = 32 // 4
        ready = lambda: _epoch(out) > steps_per_epoch + 1  # noqa: E731  (a checkpoint inside pruned training)
    assert _kill_when([BIN, "-f", exp], str(tmp_path), ready), "the run ended before it could be killed"
    assert not os.path.isfile(os.path.join(out, "summary.json"))
    r = subprocess.run([BIN, "-f", exp], capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.load(open(os.path.join(out, "summary.json")))
    want = json.load(open(os.path.join(reference, "summary.json")))
    assert got["test"] == want["test"]
    assert [h["valid_loss"] for h in got["history"]] == [h["valid_loss"] for h in want["history"]]
    for f in ("paths/paths.jsonl", "paths_final/paths.jsonl"):
        assert open(os.path.join(out, f)).read() == open(os.path.join(reference, f)).read(), f
    a = json.load(open(os.path.join(out, "pruning", "pruned_space.json")))
    b = json.load(open(os.path.join(reference, "pruning", "pruned_space.json")))
    assert a["kept"] == b["kept"] and a["path_pruning"]["thresholds"] == b["path_pruning"]["thresholds"]
    assert got["phases"]["warmup"]["runs"] == 1
    mine = json.load(open(os.path.join(out, "search", "pareto.json")))["budgets"]
    ref = json.load(open(os.path.join(reference, "search", "pareto.json")))["budgets"]
    assert [(e["arch"], e["test"]) for e in mine] == [(e["arch"], e["test"]) for e in ref]
    assert got["search"]["budgets"] == want["search"]["budgets"]


def test_warmup_can_begin_with_the_largest_path(tiny_voc, tmp_path):
    """``warmup_largest_epochs``: the largest path of A alone first (once-for-all's first stage),
    then A uniformly with channels sorted by importance, then Ã; one learning-rate schedule."""
    out = str(tmp_path / "run")
    conf = experiment(tiny_voc, out, epoch=4, warmup_epochs=2, warmup_largest_epochs=1, search=None,
                      repeatability_paths=0, figure_paths_per_bucket=0, checkpoint_every=0)
    conf["optimizer"]["train"]["lr_scheduler"] = {"name": "CosineScheduler"}
    r = subprocess.run([BIN, "-f", write(str(tmp_path), conf, "exp.json")], capture_output=True, text=True,
                       timeout=900, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    hist = json.load(open(os.path.join(out, "supernet", "summary.json")))["history"]
    assert [h["space"] for h in hist] == ["largest", "ofa", "pruned", "pruned"]
    v0, v1 = hist[0]["valid_loss"], hist[1]["valid_loss"]
    assert v0["min"] == v0["max"] and v1["min"] != v1["max"]          # one path first, then all of A
    log = r.stdout + r.stderr
    assert log.count("channels re-organised by importance") == 2       # middle and stem/stage channels
    assert log.index("epoch 0 done") < log.index("channels re-organised") < log.index("epoch 1 ")
    lrs = [h["lr"] for h in hist]
    assert lrs[0] > lrs[1] > lrs[2] > lrs[3]                            # one cosine, not restarted per stage
    # the check comes before any work
    bad = experiment(tiny_voc, str(tmp_path / "bad"), warmup_epochs=1, warmup_largest_epochs=1)
    r = subprocess.run([BIN, "-f", write(str(tmp_path), bad, "bad.json")], capture_output=True, text=True,
                       timeout=300, cwd=str(tmp_path))
    assert r.returncode != 0 and "hparams.warmup_largest_epochs=1 must be below hparams.warmup_epochs=1" in r.stderr
    assert not os.path.exists(tmp_path / "bad" / "supernet")
