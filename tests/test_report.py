"""``report``: run folders in the layouts their writers use (DetOFA's runner, the supernet trainer,
DetOFASearcher's pareto.json), the table numbers against a hand computation, the figures, labels,
and one-line errors before anything is written."""
import json
import os

import pytest

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.report import label_of, write_report
from nnabla_nas_detofa.report.runs import ReportError

PNG = b"\x89PNG\r\n\x1a\n"


def dump(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def experiment(algorithm, **hp):
    return {"args": {"algorithm": algorithm, "context": "cpu"}, "dataloader": {"detofa_voc": {"input_size": 96}},
            "network": {"detofa_resnet50": {"num_classes": 5, "width_mult": 0.25}},
            "hparams": {"epoch": 4, "batch_size_train": 8, "batch_size_valid": 8, **hp}}


def history(seconds, steps=10, space="ofa"):
    return [{"epoch": i, "lr": 1e-3, "train": {"loss/train": 3.0}, "valid_loss": {"min": 3.0, "max": 2.9},
             "seconds": s, "steps": steps, "sampling_seconds": 0.01, "space": space} for i, s in enumerate(seconds)]


def pareto(folder, points, fullnet=(119.3, 0.6), training_run=None, metric="mAP", seconds=30.0, **over):
    """``points``: (budget_mflops, mflops, metric as a fraction)."""
    doc = {"format": "nnabla_nas_detofa.pareto", "version": 1, "metric": metric, "metric_scale": "fraction",
           "input_size": 96, "weights": os.path.join(str(training_run), "supernet.h5"), "training_run": training_run,
           "search": {"algorithm": "regularized", "population": 100, "sample": 25, "generations": 500,
                      "fitness": "path_filter", "seed": 0, "pruned_space": None, "path_filter": None},
           "budgets": [{"budget_mflops": b, "bucket": i, "flops_range": [40.0, b], "arch": {"d": [0] * 5},
                        "mflops": m, "params": 1.0e6, "latency_ms": None, "fitness": 0.5, "calls": 500,
                        "search_seconds": 1.0, "test": {metric: ap, "metric": "voc07"}, "dir": f"budget_{i}",
                        "files": {"nnp": "a.nnp", "onnx": "a.onnx"}} for i, (b, m, ap) in enumerate(points)],
           "fullnet": {"arch": {"d": [2] * 5}, "mflops": fullnet[0], "params": 2.0e6, "test": {metric: fullnet[1]}},
           "seconds": seconds}
    doc.update(over)
    dump(os.path.join(folder, "pareto.json"), doc)
    return folder


def quality(tau, prec, flops_tau=0.2):
    return {"n": 20, "bucket_sizes": {"0": 10, "1": 10}, "kendall_tau": 0.6, "kendall_tau_bucket": {"0": tau},
            "kendall_tau_within": tau, "weak": {"0.25": {"accuracy": 0.8, "precision": prec, "recall": 0.3}},
            "flops_only": {"kendall_tau_within": flops_tau, "weak": {"0.25": {"precision": 0.5}}},
            "computed_on": "test split: 20 paths", "held_out": True}


def detofa_run(folder, points, fig6=True):
    """A DetOFA training folder as runners/detofa.py leaves it, its search in search/pareto.json."""
    phases = {"warmup": {"seconds": 50.0, "runs": 1, "done": True}, "paths": {"seconds": 30.0, "runs": 1, "done": True},
              "pruning": {"seconds": 5.0, "runs": 1, "done": True},
              "pruned_training": {"seconds": 150.0, "runs": 2, "done": True},
              "paths_final": {"seconds": 40.0, "runs": 1, "done": True},
              "figures": {"seconds": 20.0, "runs": 1, "done": True}}
    dump(os.path.join(folder, "experiment.json"), experiment("DetOFA", warmup_epochs=1))
    dump(os.path.join(folder, "run.json"), {"algorithm": "DetOFA", "network": {}, "input_size": 96})
    dump(os.path.join(folder, "phases.json"), phases)
    hist = history([40.0, 45.0, 46.0, 49.0])
    dump(os.path.join(folder, "summary.json"), {
        "phases": phases, "total_seconds": 295.0, "pruned_space": {"size_estimate": {"ratio": 0.4}},
        "path_pruning_acceptance": 0.7, "sampling_seconds_per_step": 0.001, "sampling_share_of_step": 0.01,
        "test": {"min": {"mAP": 10.0, "mflops": 42.0}, "max": {"mAP": 20.0, "mflops": 119.3}},
        "supernet": os.path.join(folder, "supernet", "supernet.h5"),
        "path_filter_for_search": os.path.join(folder, "paths_final", "path_filter.h5"),
        "filter_quality": {"warmup": quality(0.5, 0.6), "final": quality(0.7, 0.8)},
        "label_repeatability": None, "mean_val_loss_fig6": None, "history": hist})
    if fig6:
        rows = [{"space": s, "bucket": b, "flops": 50.0 + 10 * b, "arch": {}, "val_loss": v + b}
                for b in range(2) for s, v in (("A", 3.0), ("A", 3.2), ("pruned", 2.8), ("pruned", 2.9))]
        dump(os.path.join(folder, "fig6_paths.json"), rows)
    pareto(os.path.join(folder, "search"), points, training_run=folder, seconds=60.0)
    return folder


def trainer_run(folder, seconds, **hp):
    dump(os.path.join(folder, "experiment.json"), experiment("DetOFASupernetTrainer", **hp))
    dump(os.path.join(folder, "summary.json"), {"epochs": len(seconds), "steps": 10 * len(seconds),
                                                "test": {}, "history": history(seconds)})
    return folder


@pytest.fixture
def runs(tmp_path):
    d = detofa_run(str(tmp_path / "detofa"), [(50.0, 48.0, 0.30), (70.0, 69.0, 0.40), (90.0, 88.5, 0.50)])
    trainer_run(str(tmp_path / "ofa"), [60.0, 60.0, 60.0, 60.0], space="ofa")
    s = pareto(str(tmp_path / "ofa_search"), [(50.2, 49.0, 0.28), (70.0, 68.0, 0.39), (90.0, 89.0, 0.47)],
               training_run=str(tmp_path / "ofa"), seconds=100.0)
    trainer_run(str(tmp_path / "compofa"), [30.0, 30.0], space="compofa")
    c = pareto(str(tmp_path / "compofa_search"), [(60.0, 59.0, 0.20), (90.0, 88.0, 0.45)],
               training_run=str(tmp_path / "compofa"), seconds=10.0)
    return d, s, c


def test_numbers_match_a_hand_computation(runs, tmp_path):
    d, s, c = runs
    out = str(tmp_path / "rep")
    rep = write_report([(s, None), (d, None), (c, None)], out)
    assert rep["reference"] == "DetOFA"      # the DetOFA run, wherever it stands
    labels = [r["label"] for r in rep["runs"]]
    assert labels == ["OFA w/o PS", "DetOFA", "CompOFA*"]
    gaps = {g["run"]: g for g in rep["gaps"]}
    # 50 vs 50.2 is one budget (0.4 % apart); percent = 100 x fraction
    assert gaps["OFA w/o PS"]["n_budgets"] == 3
    assert gaps["OFA w/o PS"]["mean_gap"] == pytest.approx(((30 - 28) + (40 - 39) + (50 - 47)) / 3)
    assert gaps["CompOFA*"]["n_budgets"] == 1 and gaps["CompOFA*"]["mean_gap"] == pytest.approx(5.0)
    assert [b["budget_mflops"] for b in rep["budgets"]] == [50.2, 60.0, 70.0, 90.0] or \
        [b["budget_mflops"] for b in rep["budgets"]] == [50.0, 60.0, 70.0, 90.0]
    assert any("different budgets" in n for n in rep["notes"])
    t = {r["label"]: r["time_seconds"] for r in rep["runs"]}
    assert t["DetOFA"]["supernet_steps"] == pytest.approx(180.0)
    assert t["DetOFA"]["path_sampling"] == pytest.approx(70.0)
    assert t["DetOFA"]["figures"] == pytest.approx(20.0)
    assert t["DetOFA"]["training_total"] == pytest.approx(180 + 70 + 5)     # Fig. 6 labelling not counted
    assert t["DetOFA"]["total"] == pytest.approx(255 + 60)
    assert t["OFA w/o PS"]["training_total"] == pytest.approx(240.0)
    assert t["OFA w/o PS"]["training_vs_reference"] == pytest.approx(240 / 255)
    assert t["OFA w/o PS"]["total"] == pytest.approx(340.0)
    q = rep["runs"][1]["filter_quality"]["final"]
    assert q["kendall_tau_within"] == 0.7 and q["weak25_precision"] == 0.8
    fig6 = rep["runs"][1]["fig6"]
    assert fig6[1]["A"] == {"n": 2, "mean_val_loss": pytest.approx(4.1)}
    assert fig6[1]["pruned"]["mean_val_loss"] == pytest.approx(3.85)
    for f in ("fig5_ap_vs_mflops.png", "fig6_val_loss.png"):
        assert open(os.path.join(out, f), "rb").read(8) == PNG
    md = open(os.path.join(out, "report.md")).read()
    assert "| DetOFA | OFA w/o PS | +2.00 | 3 |" in md
    assert "| DetOFA | CompOFA* | +5.00 | 1 |" in md
    assert "30.00 (48.0)" in md and "28.00 (49.0)" in md and "60.00 (119.3)" in md
    assert "![Fig. 5" in md and "![Fig. 6" in md
    assert "| DetOFA | final supernet (search) | 0.700 | 0.800 |" in md
    saved = json.load(open(os.path.join(out, "report.json")))
    assert saved["gaps"][0]["mean_gap"] == pytest.approx(2.0)


def test_progressive_shrinking_time_per_stage(tmp_path):
    t = trainer_run(str(tmp_path / "ps"), [10.0, 20.0, 30.0], space_schedule=[["ps1", 2], ["ps2", 1]])
    summary = json.load(open(os.path.join(t, "summary.json")))
    for h, space in zip(summary["history"], ("ps1", "ps1", "ps2")):
        h["space"] = space
    dump(os.path.join(t, "summary.json"), summary)
    s = pareto(str(tmp_path / "ps_search"), [(50.0, 49.0, 0.3)], training_run=t)
    rep = write_report([(s, None)], str(tmp_path / "rep"))
    assert rep["runs"][0]["label"] == "OFA w/ PS"
    assert rep["runs"][0]["time_seconds"]["steps_per_space"] == {"ps1": 30.0, "ps2": 30.0}
    assert "supernet steps per sampled space: ps1 30.0 s, ps2 30.0 s" in open(tmp_path / "rep" / "report.md").read()


def test_labels_from_the_training_experiment():
    assert label_of(experiment("DetOFA")) == "DetOFA"
    assert label_of(experiment("DetOFASupernetTrainer", space="ofa")) == "OFA w/o PS"
    assert label_of(experiment("DetOFASupernetTrainer")) == "OFA w/o PS"
    assert label_of(experiment("DetOFASupernetTrainer", space="compofa")) == "CompOFA*"
    assert label_of(experiment("DetOFASupernetTrainer", space={"coupled": True})) == "CompOFA*"
    assert label_of(experiment("DetOFASupernetTrainer", space_schedule=[["ps1", 2], ["ps2", 2]])) == "OFA w/ PS"


def report(argv, capsys):
    code = main_tools(["report"] + argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_labels_and_rewrite_of_its_own_folder(runs, tmp_path, capsys):
    d, s, _ = runs
    out = str(tmp_path / "rep")
    code, stdout, err = report([f"{d}:mine", s, s, "-o", out], capsys)
    assert code == 0, err
    line = json.loads(stdout)
    assert line["reference"] == "mine"
    assert set(line["mean_gap"]) == {"OFA w/o PS (ofa_search)", "OFA w/o PS (ofa_search) #2"}
    # the same folder again, now without Fig. 6: the earlier report's files are replaced
    code, _, err = report([s, "-o", out], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["fig5_ap_vs_mflops.png", "report.json", "report.md"]
    md = open(os.path.join(out, "report.md")).read()
    assert "Fig. 6 (fig6_val_loss.png) skipped" in md and "One run only" in md


def _bad_pareto(folder, **over):
    return pareto(folder, [(50.0, 49.0, 0.3)], training_run=None, **over)


@pytest.mark.parametrize("case", ["missing", "not_run", "training_without_search", "format", "version",
                                  "percent_as_fraction", "no_metric", "metric_mismatch", "unfinished_training",
                                  "foreign_output", "output_is_file"])
def test_bad_input_is_one_line_before_anything_is_written(case, runs, tmp_path, capsys):
    d, s, _ = runs
    out = str(tmp_path / "out")
    argv, expect = [s], None
    if case == "missing":
        argv, expect = [str(tmp_path / "nope")], "nope: no such run folder"
    elif case == "not_run":
        os.makedirs(tmp_path / "empty")
        argv, expect = [str(tmp_path / "empty")], "not a run folder"
    elif case == "training_without_search":
        argv, expect = [str(tmp_path / "ofa")], "without a search result"
    elif case == "format":
        argv, expect = [_bad_pareto(str(tmp_path / "b"), format="other")], "format 'other'"
    elif case == "version":
        argv, expect = [_bad_pareto(str(tmp_path / "b"), version=2)], "version 2"
    elif case == "percent_as_fraction":
        p = _bad_pareto(str(tmp_path / "b"))
        doc = json.load(open(os.path.join(p, "pareto.json")))
        doc["budgets"][0]["test"]["mAP"] = 30.0
        dump(os.path.join(p, "pareto.json"), doc)
        argv, expect = [p], "budgets[0]: test.mAP=30.0 is not a fraction in [0, 1]"
    elif case == "no_metric":
        p = _bad_pareto(str(tmp_path / "b"))
        doc = json.load(open(os.path.join(p, "pareto.json")))
        doc["budgets"][0]["test"] = {"AP": 0.3}
        dump(os.path.join(p, "pareto.json"), doc)
        argv, expect = [p], "budgets[0]: expected a 'test' object with a number 'mAP'"
    elif case == "metric_mismatch":
        argv, expect = [s, _bad_pareto(str(tmp_path / "b"), metric="AP")], "different metrics"
    elif case == "unfinished_training":
        os.remove(tmp_path / "ofa" / "summary.json")
        argv, expect = [s], "no summary.json"
    elif case == "foreign_output":
        os.makedirs(out)
        open(os.path.join(out, "notes.txt"), "w").write("mine")
        expect = "holds files this report did not write (notes.txt)"
    elif case == "output_is_file":
        open(out, "w").write("mine")
        expect = "is a file"
    before = sorted(os.listdir(out)) if os.path.isdir(out) else None
    code, stdout, err = report(argv + ["-o", out], capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and expect in err, err
    if case == "foreign_output":
        assert sorted(os.listdir(out)) == before and open(os.path.join(out, "notes.txt")).read() == "mine"
    elif case == "output_is_file":
        assert open(out).read() == "mine"
    else:
        assert not os.path.exists(out)


def test_a_search_folder_without_training_run_is_reported_with_a_note(tmp_path):
    p = _bad_pareto(str(tmp_path / "lonely"))
    rep = write_report([(p, "lonely")], str(tmp_path / "rep"))
    assert rep["runs"][0]["time_seconds"]["training_total"] is None
    assert rep["runs"][0]["time_seconds"]["search"] == 30.0
    assert any("names no training run" in n for n in rep["notes"])


def test_percent_scale_is_taken_as_it_is(tmp_path):
    """DetOFASearcher writes the evaluators' percent (metric_scale "percent")."""
    p = pareto(str(tmp_path / "s"), [(50.0, 49.0, 31.5)], fullnet=(119.3, 40.0), metric_scale="percent")
    rep = write_report([(p, "s")], str(tmp_path / "rep"))
    assert rep["runs"][0]["points"][0]["ap"] == 31.5 and rep["runs"][0]["fullnet"]["ap"] == 40.0
    bad = pareto(str(tmp_path / "b"), [(50.0, 49.0, 131.5)], metric_scale="percent")
    with pytest.raises(ReportError, match=r"budgets\[0\]: test.mAP=131.5 is not a percent"):
        write_report([(bad, None)], str(tmp_path / "rep2"))
    with pytest.raises(ReportError, match="metric_scale 'permille'"):
        write_report([(pareto(str(tmp_path / "c"), [(50.0, 49.0, 0.3)], metric_scale="permille"), None)],
                     str(tmp_path / "rep3"))


def test_empty_label_is_refused(runs, tmp_path, capsys):
    code, _, err = report([runs[1] + ":", "-o", str(tmp_path / "rep")], capsys)
    assert code == 2 and "empty label" in err and err.count("\n") == 1


def test_missing_training_run_named_by_the_pareto_file(tmp_path):
    p = pareto(str(tmp_path / "s"), [(50.0, 49.0, 0.3)], training_run=str(tmp_path / "gone"))
    with pytest.raises(ReportError, match="pareto.json: training_run=.*gone.: no such folder"):
        write_report([(p, None)], str(tmp_path / "rep"))
