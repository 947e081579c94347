"""DetOFA's cost against OFA w/o PS at equal epochs, per phase, and the cost of path-pruned sampling.

    .venv/bin/python benchmarks/bench_detofa.py [--quick] [--epochs N] [--json OUT.json]

In one run, on the demo-size supernet (1/4 width, divisor 1, 96 px, 5 classes, batch 8) and on
generated shapes data (``make-synthetic-voc``, in a temporary folder), two experiments through the
``nnabla_nas`` command, one after the other, the same epochs, data, seed and measurement sets:

* ``DetOFA``: warm-up over A, labelling + path filter, operation pruning, path-pruned training,
  the final paths of the pruned space and their filter, Fig. 6;
* ``DetOFASupernetTrainer`` with ``"space": "ofa"``: OFA w/o PS (uniform sampling).

Printed, all measured in this run:

(a) sampling seconds per training step of the path-pruned sampler (Ã + path filter, the DetOFA
    run's pruned-training epochs) and of the uniform sampler (the baseline run), each as a share
    of that run's mean training-step time (goal: <= 1 %);
(b) the DetOFA run's wall time per phase (warm-up, labelling, filter, pruning, pruned training,
    final labelling, figures; from ``phases.json`` and the paths phases' ``quality.json``) and its
    total over the baseline's total (paper, VOC: 2.09x; goal: <= 1.3x). A few epochs make the
    fixed costs (labelling, filter, pruning) weigh more than at a real training length, so the
    per-unit costs are also given (seconds per training step, per labelled path) and the ratio
    they give for ``examples/demo_detofa.json``'s epochs and path counts (a projection from this
    run's measured units, marked as such).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NNABLA_NAS = os.path.join(os.path.dirname(sys.executable), "nnabla_nas")
sys.path.insert(0, ROOT)


def experiment(data, out, algorithm, epochs, warmup, num_train, paths_per_bucket, calib, valid):
    hp = {"epoch": epochs, "batch_size_train": 8, "batch_size_valid": 16, "mini_batch_train": 8,
          "mini_batch_valid": 16, "space": "ofa", "sampling": "decision", "seed": 0, "print_frequency": 1000,
          "checkpoint_every": 0, "valid_archs": ["min", "max"], "bn_calib_images": calib, "valid_images": valid}
    if algorithm == "DetOFA":
        hp.update({"warmup_epochs": warmup, "n_buckets": 5, "paths_per_bucket": paths_per_bucket,
                   "repeatability_paths": 0, "figure_paths_per_bucket": 2,
                   "filter": {"epochs": 60, "max_seconds": 30},
                   "pruning": {"strategy": "flops_score_all", "r_op1": 0.1, "r_op2": 0.3, "r_path": 0.25}})
    return {"args": {"algorithm": algorithm, "context": "cpu", "output_path": out},
            "dataloader": {"detofa_voc": {"root": data, "synthetic": {"num_train": num_train, "num_val": 48,
                                                                      "image_size": 128, "seed": 0},
                                          "train_split": "synth_train", "test_split": "synth_val",
                                          "input_size": 96, "num_classes": 5, "max_objs": 32, "num_workers": 2}},
            "network": {"detofa_resnet50": {"num_classes": 5, "width_mult": 0.25, "divisor": 1, "space": "ofa"}},
            "optimizer": {"train": {"name": "Adam", "lr": 2e-3,
                                    "lr_scheduler": {"name": "CosineScheduler", "warmup_epochs": 1}}},
            "hparams": hp}


def run(conf, tmp, name):
    """Wall seconds of one ``nnabla_nas -f`` run (kept from an earlier run in ``tmp`` when it ended)."""
    done = os.path.join(tmp, name + ".wall")
    if os.path.isfile(os.path.join(conf["args"]["output_path"], "summary.json")) and os.path.isfile(done):
        return float(open(done).read())
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(conf, f)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.time()
    r = subprocess.run([NNABLA_NAS, "-f", path], cwd=tmp, env=env, capture_output=True, text=True)
    wall = time.time() - t
    if r.returncode != 0:
        sys.exit(f"bench_detofa: the {name} run failed:\n{r.stderr[-3000:]}")
    with open(done, "w") as f:
        f.write(str(wall))
    return wall


def _steps(history, pred):
    rows = [h for h in history if pred(h)]
    return (sum(h["steps"] for h in rows), sum(h["seconds"] for h in rows),
            sum(h.get("sampling_seconds", 0.0) for h in rows))


def measure(quick: bool, epochs=None, keep=None):
    epochs = epochs or (3 if quick else 6)
    warmup = 1
    num_train = 160 if quick else 320          # 80 % train: 16 / 32 steps per epoch at batch 8
    m = 3 if quick else 6                       # paths per bucket (5 buckets)
    calib, valid = (64, 48) if quick else (128, 48)
    tmp = os.path.abspath(keep) if keep else tempfile.mkdtemp(prefix="bench_detofa_")
    os.makedirs(tmp, exist_ok=True)
    try:
        data = os.path.join(tmp, "data")
        det_out, uni_out = os.path.join(tmp, "detofa"), os.path.join(tmp, "uniform")
        # the data set is made by the first run; the baseline runs second on the same files
        det_wall = run(experiment(data, det_out, "DetOFA", epochs, warmup, num_train, m, calib, valid), tmp, "detofa")
        uni_wall = run(experiment(data, uni_out, "DetOFASupernetTrainer", epochs, warmup, num_train, m, calib, valid),
                       tmp, "uniform")
        r = analyse(det_out, det_wall, uni_out, uni_wall)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    r.update({"epochs": epochs, "warmup_epochs": warmup, "paths_per_bucket": m, "bn_calib_images": calib,
              "valid_images": valid})
    return r


def analyse(det_out, det_wall, uni_out, uni_wall):
    """The figures from a DetOFA run folder and a uniform run folder and their commands' wall times."""
    det = json.load(open(os.path.join(det_out, "summary.json")))
    uni = json.load(open(os.path.join(uni_out, "summary.json")))
    q1 = json.load(open(os.path.join(det_out, "paths", "quality.json")))
    q2 = json.load(open(os.path.join(det_out, "paths_final", "quality.json")))
    ph = {k: v["seconds"] for k, v in det["phases"].items()}
    split = {
        "warmup": ph["warmup"],
        "labelling": q1["label_seconds"],
        "filter": ph["paths"] - q1["label_seconds"],       # filter training + its baselines and report
        "pruning": ph["pruning"],
        "pruned_training": ph["pruned_training"],          # training + the final test evaluation
        "final_labelling": q2["label_seconds"],
        "final_filter": ph["paths_final"] - q2["label_seconds"],
        "figures": ph.get("figures", 0.0),
    }
    # both totals are the command's wall time (start-up, data and model set-up included)
    split["start-up, summary"] = det_wall - sum(ph.values())
    det_total, uni_total = det_wall, uni_wall

    # (a) sampling per step as a share of the step
    p_steps, p_sec, p_samp = _steps(det["history"], lambda h: h.get("space") == "pruned")
    u_steps, u_sec, u_samp = _steps(uni["history"], lambda h: True)
    step_s = (p_sec + u_sec) / max(p_steps + u_steps, 1)
    sampling = {"pruned_s_per_step": p_samp / max(p_steps, 1), "uniform_s_per_step": u_samp / max(u_steps, 1),
                "train_step_s": step_s,
                "pruned_share": p_samp / max(p_sec, 1e-9), "uniform_share": u_samp / max(u_sec, 1e-9),
                "path_pruning_acceptance": det.get("path_pruning_acceptance")}

    # per-unit costs, and the ratio they give at the demo's settings (a projection)
    n_label = q1["paths"] + q2["paths"]
    per_path = (split["labelling"] + split["final_labelling"]) / max(n_label, 1)
    uni_steps = uni["steps"]
    uni_per_step = uni_total / max(uni_steps, 1)            # the whole baseline (per-epoch checks included)
    fixed = split["filter"] + split["final_filter"] + split["pruning"] + split["figures"]
    demo = json.load(open(os.path.join(ROOT, "examples", "demo_detofa.json")))
    dh, dl = demo["hparams"], demo["dataloader"]["detofa_voc"]
    from nnabla_nas_detofa.data.loader import loader_options
    from nnabla_nas_detofa.data.pipeline import search_split
    opts = loader_options({k: v for k, v in dl.items() if k != "synthetic"})
    n_demo = len(search_split(dl["synthetic"]["num_train"], opts["search_valid_fraction"], opts["seed"])[0])
    demo_steps = dh["epoch"] * (n_demo // dh["batch_size_train"])
    demo_paths = 2 * dh["n_buckets"] * dh["paths_per_bucket"] + dh.get("repeatability_paths", 0) \
        + dh["n_buckets"] * dh.get("figure_paths_per_bucket", 0)
    demo_uni = demo_steps * uni_per_step
    demo_det = demo_uni + demo_paths * per_path + fixed
    return {"detofa_seconds": det_total, "detofa_phase_seconds": sum(ph.values()),
            "uniform_seconds": uni_total, "ratio": det_total / uni_total, "split": split,
            "sampling": sampling, "labelled_paths": n_label, "label_seconds_per_path": per_path,
            "uniform_seconds_per_step": uni_per_step,
            "pruned_space_ratio": det["pruned_space"]["size_estimate"]["ratio"],
            "projection_demo": {"steps": demo_steps, "labelled_paths": demo_paths, "uniform_seconds": demo_uni,
                                "detofa_seconds": demo_det, "ratio": demo_det / demo_uni}}


def report(r):
    s, sp = r["split"], r["sampling"]
    print(f"demo-size supernet, {r['epochs']} epochs (warm-up {r['warmup_epochs']}), {r['paths_per_bucket']} paths "
          f"per bucket x 5, BN calibration {r['bn_calib_images']} images, validation {r['valid_images']} images")
    print(f"(a) sampling per step: path-pruned {sp['pruned_s_per_step'] * 1e3:.3f} ms = "
          f"{100 * sp['pruned_share']:.3f} % of its training time; uniform {sp['uniform_s_per_step'] * 1e3:.3f} ms = "
          f"{100 * sp['uniform_share']:.3f} %; training step {sp['train_step_s']:.3f} s; path-pruning acceptance "
          f"{sp['path_pruning_acceptance']}")
    print(f"(b) DetOFA {r['detofa_seconds']:.1f} s vs OFA w/o PS {r['uniform_seconds']:.1f} s at equal epochs: "
          f"{r['ratio']:.2f}x (goal <= 1.3x; paper 2.09x)")
    for k, v in s.items():
        print(f"    {k:18s} {v:8.1f} s  {100 * v / r['detofa_seconds']:5.1f} %")
    print(f"    per unit: {r['uniform_seconds_per_step']:.3f} s per baseline step, {r['label_seconds_per_path']:.2f} s "
          f"per labelled path ({r['labelled_paths']} paths); |Ã| / |A| = {r['pruned_space_ratio']:.3g}")
    p = r["projection_demo"]
    print(f"    projected from these units for examples/demo_detofa.json ({p['steps']} steps, {p['labelled_paths']} "
          f"labelled paths): {p['detofa_seconds']:.0f} s vs {p['uniform_seconds']:.0f} s = {p['ratio']:.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 epochs, 3 paths per bucket (a few minutes)")
    ap.add_argument("--epochs", type=int, help="supernet epochs of both runs (default 3 quick, 6)")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it; a later call re-uses the runs that ended "
                                                  "there (same options)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    r = measure(args.quick, args.epochs, args.keep)
    report(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return r


if __name__ == "__main__":
    main(sys.argv[1:])
