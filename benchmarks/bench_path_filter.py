"""Path filter benchmark (CPU): scoring throughput; ranking quality of the filter against three
baselines on synthetic path sets and on a path set labelled from the demo supernet; Table 2
ablations.

    .venv/bin/python benchmarks/bench_path_filter.py [--quick] [--transfer] [--json OUT.json]

1. Scoring: random OFA paths (full width, 384 px, as the paper), batched, numpy forward (the
   default backend) and the NNabla graph.
2. Ranking quality on held-out paths (issue 7's setting): for each synthetic task (a hidden
   function of the arch, ``path_filter.synthetic``), 600 training paths (120 per FLOPs bucket of
   the OFA space; 80/20 train / validation, validation selects the checkpoint) and 500 held-out
   test paths (100 per bucket) that play no part in training or selection. The filter (the
   library defaults of ``train_path_filter``) against the FLOPs-only ranking, ridge regression on
   one-hot choices + log FLOPs, and an OFA-style MLP (3 x 400, ReLU), all fitted on the same
   paths. Figures: within-bucket Kendall tau and weakest-25 % precision (``path_filter.quality``).
3. The same on ``benchmarks/data/demo_paths.jsonl``: a stratified split into train / validation /
   test (``--demo-test`` of every bucket held out as the test split), repeated for
   ``--demo-splits`` split seeds; the figures are the means over the splits.
4. Table 2 ablations, trained from scratch on synthetic task 0's 600 paths and on the demo set's
   first split, each as one network (``ensemble=1``) next to the full filter as one network:
   without the FLOPs-bounded loss (pairs across buckets), without the budget embedding, without
   the block positional encoding; with ``--extra-ablations`` also this project's choices: without
   the wide head (the transformer alone) and with the pairwise loss on the sigmoid score
   (DETOFA.md's literal Eq. 5) instead of the logit.

How ``benchmarks/data/demo_paths.jsonl`` was made (300 paths, 60 per FLOPs bucket, labelled with
their validation loss; ``demo_buckets.json`` next to it holds the buckets they were sampled in and
the labels' repeatability):

    # the demo supernet (OFA w/o PS, 20 epochs, seed 0, 1/4-width OFA-ResNet50 + CenterNet, 96 px)
    PYTHONPATH=$PWD nnabla_nas -f examples/demo_ofa_uniform.json -c cpu -o runs/demo_ofa_uniform
    # examples/demo_path_filter.json (weights runs/demo_ofa_uniform/supernet.h5, seed 0,
    # BN calibration on 256 training images, D_val = 96 held-out training images) with
    # hparams "paths_per_bucket": 60, "repeatability_paths": 40, "filter": {}, output
    # runs/demo_path_filter_300, written to runs/demo_path_filter_300.json:
    PYTHONPATH=$PWD nnabla_nas -f runs/demo_path_filter_300.json -c cpu -o runs/demo_path_filter_300
    cp runs/demo_path_filter_300/paths.jsonl benchmarks/data/demo_paths.jsonl

Labels: 2.76-2.90 (the demo supernet is small and briefly trained, so paths differ little); 40
of them labelled again with a second calibration set: within-bucket Kendall tau 0.903 (max
difference 0.015), the ceiling any ranker can reach on this set is about there.
With ``--transfer``: pre-train on synthetic task 0 (OFA), fine-tune on 500 paths of a related
target task (CompOFA*), timed, against a filter trained from scratch on the same 500 paths.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnabla_nas_detofa.path_filter import (PathFilter, PathFilterConfig, PathSet, SyntheticTask, evaluate,  # noqa: E402
                                           fit_baseline, synthetic_pathset, train_path_filter)
from nnabla_nas_detofa.path_filter.model import default_vocabulary  # noqa: E402
from nnabla_nas_detofa.path_filter.quality import json_safe  # noqa: E402
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops, space_buckets  # noqa: E402

CFG, SIZE = SupernetConfig(), 384
HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_PATHS = os.path.join(HERE, "data", "demo_paths.jsonl")
BASELINES = ("ridge", "mlp", "flops")
ABLATIONS = (("no FLOPs-bounded loss", {"flops_bounded": False}), ("no budget", {"budget": False}),
             ("no block PE", {"block_pe": False}))
EXTRA_ABLATIONS = (("no wide head (transformer only)", {"wide": False}),
                   ("loss on sigmoid score", {"loss_on": "score"}))


def throughput(n: int, seed: int = 0) -> dict:
    space = get_space("ofa")
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=space_buckets(space, CFG, SIZE),
                                      supernet=CFG, input_size=SIZE, wide=True))
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    flops = [mflops(a, CFG, SIZE) for a in archs]
    out = {"n": n}
    flt.score(archs[:256], flops[:256])  # warm-up
    for bs in (128, 512):
        t = time.perf_counter()
        flt.score(archs, flops, batch_size=bs)
        out[f"numpy_batch{bs}_paths_per_s"] = n / (time.perf_counter() - t)
    for bs in (1, 16):  # calls of a few paths, as the pruning sampler and the search make them
        m = 200 if bs == 1 else 1600
        t = time.perf_counter()
        for i in range(0, m, bs):
            flt.score(archs[i:i + bs], flops[i:i + bs])
        out[f"numpy_calls_of_{bs}_paths_per_s"] = m / (time.perf_counter() - t)
    t = time.perf_counter()
    flt.tokenizer.ids(archs)
    out["tokenize_paths_per_s"] = n / (time.perf_counter() - t)
    m = min(n, 1024)
    flt.score(archs[:512], flops[:512], backend="nnabla", batch_size=512)  # builds the graph
    t = time.perf_counter()
    flt.score(archs[:m], flops[:m], backend="nnabla", batch_size=512)
    out["nnabla_graph_batch512_paths_per_s"] = m / (time.perf_counter() - t)
    return out


def _fig(q) -> dict:
    return {"tau": q["kendall_tau_within"], "precision": q["weak"]["0.25"]["precision"],
            "accuracy": q["weak"]["0.25"]["accuracy"], "detected_fraction": q["weak"]["0.25"]["detected_fraction"]}


def compare(train: PathSet, test: PathSet, buckets, seed: int, filter_kw: dict, test_fraction: float = 0.0,
            ablations=()) -> dict:
    """Filter and baselines fitted on ``train`` (its validation split selects), figures on ``test``
    (or, with ``test_fraction``, on the held-out split of ``train``)."""
    out = {"filter": {}, "baselines": {}, "ablations": {}}
    t = time.perf_counter()
    res = train_path_filter(train, buckets=buckets, seed=seed, test_fraction=test_fraction, **filter_kw)
    held = test if test is not None else train.subset(res.test_index)
    out["n_train"], out["n_val"], out["n_test"] = len(res.train_index), len(res.val_index), len(held)
    out["filter"] = dict(_fig(evaluate(res.filter, held, buckets=buckets)), seconds=time.perf_counter() - t,
                         best_epoch=res.best_epoch, stopped=res.stopped)
    for kind in BASELINES:
        t = time.perf_counter()
        b = fit_baseline(kind, train, buckets=buckets, seed=seed, test_fraction=test_fraction)
        out["baselines"][kind] = dict(_fig(evaluate(b.ranker, held, buckets=buckets)),
                                      seconds=time.perf_counter() - t)
    if ablations:  # one network each, the full filter too (the ablations are of the model, not the ensemble)
        ablations = (("full filter, one network", {}),) + tuple(ablations)
    for name, kw in ablations:
        t = time.perf_counter()
        r = train_path_filter(train, buckets=buckets, seed=seed, test_fraction=test_fraction,
                              **dict(filter_kw, ensemble=1, **kw))
        out["ablations"][name] = dict(_fig(evaluate(r.filter, held, buckets=buckets)),
                                      seconds=time.perf_counter() - t, best_epoch=r.best_epoch)
    return out


def _mean(rows, key):
    vals = [r[key] for r in rows]
    return sum(vals) / len(vals)


def _wins(row) -> bool:
    f = row["filter"]
    return all(f["tau"] > b["tau"] and f["precision"] > b["precision"] for b in row["baselines"].values())


def _print_table(rows):
    head = f"  {'path set':30s} {'train/val/test':>14s}  {'filter':>13s}" + "".join(f"  {k:>13s}" for k in BASELINES)
    print(head)
    for name, r in rows:
        cells = [r["filter"]] + [r["baselines"][k] for k in BASELINES]
        sizes = f"{r['n_train']}/{r['n_val']}/{r['n_test']}"
        print(f"  {name:30s} {sizes:>14s}" + "".join(f"  {c['tau']:.3f} / {c['precision']:.3f}" for c in cells)
              + ("" if _wins(r) else "   <- a baseline wins"))


def _print_ablations(title, row):
    print(f"Table 2 ablations, {title} (from scratch, same paths; weakest-25 %: accuracy / precision / "
          "paper-style recall = detected fraction):")
    items = [("full filter (default ensemble)", row["filter"])] + list(row["ablations"].items())
    for name, f in items:
        print(f"  {name:32s} tau {f['tau']:+.3f}   acc {f['accuracy']:.3f}  prec {f['precision']:.3f}  "
              f"rec {f['detected_fraction']:.3f}")


def transfer(source: PathSet, seed: int, filter_kw: dict, pre=None) -> dict:
    comp = get_space("compofa")
    target_task = SyntheticTask(seed).perturbed(seed + 100, amount=0.3)
    target = synthetic_pathset(target_task, comp, CFG, SIZE, 100, seed=seed + 2)
    test = synthetic_pathset(target_task, comp, CFG, SIZE, 100, seed=seed + 3)
    if pre is None:
        pre = train_path_filter(source, space=get_space("ofa"), supernet=CFG, input_size=SIZE, seed=seed,
                                **filter_kw).filter
    ft = train_path_filter(target, space=comp, supernet=CFG, input_size=SIZE, init=pre, seed=seed, **filter_kw)
    scratch = train_path_filter(target, space=comp, supernet=CFG, input_size=SIZE, seed=seed, **filter_kw)
    return {"target_paths": len(target), "test_paths": len(test), "finetune_seconds": ft.seconds,
            "finetune_best_epoch": ft.best_epoch, "scratch_seconds": scratch.seconds,
            "finetuned": _fig(evaluate(ft.filter, test, buckets=ft.buckets)),
            "scratch": _fig(evaluate(scratch.filter, test, buckets=ft.buckets))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: one small synthetic set, few epochs, one demo split, no ablations")
    ap.add_argument("--tasks", type=int, default=3, help="synthetic tasks (seeds 0..N-1)")
    ap.add_argument("--demo", default=DEMO_PATHS, help="labelled path set of the demo supernet")
    ap.add_argument("--demo-splits", type=int, default=3, help="split seeds averaged on the demo path set")
    ap.add_argument("--demo-test", type=float, default=0.3, help="share of every demo bucket held out as test")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--extra-ablations", action="store_true",
                    help="also ablate this project's additions (wide head, loss on the logit)")
    ap.add_argument("--transfer", action="store_true", help="also time pre-training + fine-tuning (CompOFA* target)")
    ap.add_argument("--json", help="also write the numbers to this file")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    res = {"throughput": throughput(1000 if a.quick else 4000), "load_average": os.getloadavg()}
    ablations = () if a.no_ablations else ABLATIONS + (EXTRA_ABLATIONS if a.extra_ablations else ())
    tp = res["throughput"]
    print(f"scoring throughput (paths/s, one process, this CPU; load average {res['load_average'][0]:.2f}):")
    for k, v in tp.items():
        if k != "n":
            print(f"  {k:36s} {v:10.0f}")

    filter_kw = {"epochs": 3, "patience": 2} if a.quick else {}
    ofa = get_space("ofa")
    buckets = space_buckets(ofa, CFG, SIZE)
    m_train, m_test = (24, 20) if a.quick else (120, 100)
    tasks = 1 if a.quick else a.tasks
    rows = []
    for s in range(tasks):
        task = SyntheticTask(s)
        train = synthetic_pathset(task, ofa, CFG, SIZE, m_train, seed=10 * s + 1)
        test = synthetic_pathset(task, ofa, CFG, SIZE, m_test, seed=10 * s + 2)
        abl = ablations if (s == 0 and not a.quick) else ()
        rows.append((f"synthetic task {s}", compare(train, test, buckets, 0, filter_kw, ablations=abl)))
        print(f"  [synthetic task {s} done, {time.perf_counter() - t_start:.0f}s]", flush=True)
    res["synthetic"] = {name: r for name, r in rows}

    demo_rows = []
    if os.path.isfile(a.demo):
        demo = PathSet.read(a.demo)
        dbuckets = _demo_buckets(demo)
        rep = _demo_meta().get("label_repeatability")
        if rep:
            res["demo_label_repeatability"] = rep
            print(f"demo path set: {len(demo)} paths; label repeatability: {rep['paths']} paths labelled again with "
                  f"another calibration set of {rep['calibration_images']} images, within-bucket Kendall tau "
                  f"{rep['kendall_tau_within']:.3f} (max difference {rep['max_abs_difference']:.4f})")
        for k in range(1 if a.quick else a.demo_splits):
            abl = ablations if (k == 0 and not a.quick) else ()
            demo_rows.append(compare(demo, None, dbuckets, k, filter_kw, test_fraction=a.demo_test, ablations=abl))
            print(f"  [demo split {k} done, {time.perf_counter() - t_start:.0f}s]", flush=True)
        res["demo"] = demo_rows
    else:
        print(f"(no demo path set at {a.demo}: skipped)")

    print("ranking quality on held-out paths: within-bucket Kendall tau / weakest-25 % precision "
          "(all models fitted on the same training paths):")
    table = list(rows)
    if demo_rows:
        mean = {"n_train": demo_rows[0]["n_train"], "n_val": demo_rows[0]["n_val"], "n_test": demo_rows[0]["n_test"],
                "filter": {k: _mean([r["filter"] for r in demo_rows], k) for k in ("tau", "precision")},
                "baselines": {b: {k: _mean([r["baselines"][b] for r in demo_rows], k) for k in ("tau", "precision")}
                              for b in BASELINES}}
        res["demo_mean"] = mean
        for k, r in enumerate(demo_rows):
            table.append((f"demo supernet, split {k}", r))
        if len(demo_rows) > 1:
            table.append((f"demo supernet, mean of {len(demo_rows)}", mean))
    _print_table(table)
    syn_ok = all(_wins(r) and r["filter"]["precision"] >= 0.80 for _, r in rows)
    demo_ok = _wins(res["demo_mean"]) if demo_rows else None
    res["goal"] = {"synthetic_filter_beats_baselines_and_precision_0.80": syn_ok, "demo_filter_beats_baselines": demo_ok}
    print(f"goal{' (not measured by --quick: smoke-run sizes and epochs)' if a.quick else ''}: synthetic sets, "
          f"filter beats every baseline on both figures with precision >= 0.80: {'met' if syn_ok else 'NOT met'}; "
          f"demo path set (mean over splits): {'no data' if demo_ok is None else 'met' if demo_ok else 'NOT met'}")
    if rows and rows[0][1]["ablations"]:
        _print_ablations("synthetic task 0", rows[0][1])
    if demo_rows and demo_rows[0]["ablations"]:
        _print_ablations("demo path set, split 0", demo_rows[0])
    fsec = [r["filter"]["seconds"] for _, r in rows]
    print(f"filter training: {sum(fsec) / len(fsec):.0f} s per synthetic set of {m_train * 5} paths "
          f"(mean best epoch {_mean([r['filter'] for _, r in rows], 'best_epoch'):.0f})")
    if a.transfer:
        source = synthetic_pathset(SyntheticTask(0), ofa, CFG, SIZE, m_train, seed=1)
        tr = res["transfer"] = transfer(source, 0, filter_kw)
        print(f"transfer: fine-tune on {tr['target_paths']} CompOFA* paths {tr['finetune_seconds']:.1f} s "
              f"(best epoch {tr['finetune_best_epoch']}): tau {tr['finetuned']['tau']:.3f} prec "
              f"{tr['finetuned']['precision']:.3f}; from scratch {tr['scratch_seconds']:.1f} s: tau "
              f"{tr['scratch']['tau']:.3f} prec {tr['scratch']['precision']:.3f}")
    res["seconds"] = time.perf_counter() - t_start
    res["load_average_end"] = os.getloadavg()
    print(f"(path filter benchmark: {res['seconds']:.0f} s on this CPU; load average at the start "
          f"{res['load_average'][0]:.1f}, at the end {res['load_average_end'][0]:.1f})")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(json_safe(res), f, indent=1)
    return res


def _demo_buckets(demo: PathSet):
    """The buckets the demo paths were sampled in (their "bucket" entries, as the runner wrote them)
    when they agree with equal-width buckets over the set's FLOPs; else the set's FLOPs range."""
    from nnabla_nas_detofa.path_filter import resolve_buckets
    b = resolve_buckets(demo)
    d = _demo_meta()
    if d:
        from nnabla_nas_detofa.space import Buckets
        b = Buckets(float(d["lo"]), float(d["hi"]), int(d["n"]))
    return b


def _demo_meta() -> dict:
    meta = os.path.join(os.path.dirname(DEMO_PATHS), "demo_buckets.json")
    if not os.path.isfile(meta):
        return {}
    with open(meta, encoding="utf-8") as f:
        return json.load(f)


if __name__ == "__main__":
    main()
