"""Path filter benchmark (CPU): scoring throughput, fine-tuning time, quality vs FLOPs-only.

    .venv/bin/python benchmarks/bench_path_filter.py [--quick] [--json OUT.json]

1. Scoring: random OFA paths (full width, 384 px, as the paper), batched, numpy forward (the
   default backend) and the NNabla graph; with FLOPs given and with FLOPs computed per arch.
2. Transfer as in the paper: pre-train on a *source* path set (synthetic task with a known loss,
   m paths per FLOPs bucket), fine-tune on 500 paths (100 per bucket) of a related *target* task
   over the CompOFA* space, timed.
3. Quality on a held-out target set: the fine-tuned filter, a filter trained from scratch on the
   same 500 paths, and the FLOPs-only ranking (larger path = better, within buckets).
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnabla_nas_detofa.path_filter import (PathFilter, PathFilterConfig, SyntheticTask, evaluate,  # noqa: E402
                                           synthetic_pathset, train_path_filter)
from nnabla_nas_detofa.path_filter.model import default_vocabulary  # noqa: E402
from nnabla_nas_detofa.path_filter.quality import json_safe  # noqa: E402
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops, space_buckets  # noqa: E402

CFG, SIZE = SupernetConfig(), 384


def throughput(n: int, seed: int = 0) -> dict:
    space = get_space("ofa")
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=space_buckets(space, CFG, SIZE),
                                      supernet=CFG, input_size=SIZE))
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    flops = [mflops(a, CFG, SIZE) for a in archs]
    out = {"n": n}
    flt.score(archs[:256], flops[:256])  # warm-up
    for bs in (128, 512):
        t = time.perf_counter()
        flt.score(archs, flops, batch_size=bs)
        out[f"numpy_batch{bs}_paths_per_s"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    flt.tokenizer.ids(archs)
    out["tokenize_paths_per_s"] = n / (time.perf_counter() - t)
    fresh = [space.sample(rng) for _ in range(min(n, 5000))]  # not in the FLOPs cache
    t = time.perf_counter()
    flt.score(fresh, batch_size=128)
    out["numpy_flops_computed_paths_per_s"] = len(fresh) / (time.perf_counter() - t)
    m = min(n, 2048)
    flt.score(archs[:512], flops[:512], backend="nnabla", batch_size=512)  # builds the graph
    t = time.perf_counter()
    flt.score(archs[:m], flops[:m], backend="nnabla", batch_size=512)
    out["nnabla_graph_batch512_paths_per_s"] = m / (time.perf_counter() - t)
    return out


def transfer(m_source: int, pre_epochs: int, ft_epochs: int, m_test: int, seed: int = 0,
             with_ablations: bool = False) -> dict:
    source_task = SyntheticTask(seed)
    target_task = source_task.perturbed(seed + 100, amount=0.3)
    ofa, comp = get_space("ofa"), get_space("compofa")
    t = time.perf_counter()
    source = synthetic_pathset(source_task, ofa, CFG, SIZE, m_source, seed=seed + 1)
    target = synthetic_pathset(target_task, comp, CFG, SIZE, 100, seed=seed + 2)
    test = synthetic_pathset(target_task, comp, CFG, SIZE, m_test, seed=seed + 3)
    sampling_s = time.perf_counter() - t
    pre = train_path_filter(source, space=ofa, supernet=CFG, input_size=SIZE, epochs=pre_epochs, seed=seed)
    ft = train_path_filter(target, space=comp, supernet=CFG, input_size=SIZE, init=pre.filter, epochs=ft_epochs,
                           seed=seed)
    scratch = train_path_filter(target, space=comp, supernet=CFG, input_size=SIZE, epochs=ft_epochs, seed=seed)
    buckets = ft.buckets
    q_ft = evaluate(ft.filter, test, buckets=buckets)
    q_scratch = evaluate(scratch.filter, test, buckets=buckets)
    ablations = {}
    if with_ablations:
        # each switch off, trained from scratch on the same 500 target paths (the full model's
        # scratch numbers above are the reference)
        for name, kw in (("no-flops-bounded", {"flops_bounded": False}), ("no-budget", {"budget": False}),
                         ("no-block-pe", {"block_pe": False})):
            r = train_path_filter(target, space=comp, supernet=CFG, input_size=SIZE, epochs=ft_epochs, seed=seed,
                                  **kw)
            ablations[name] = evaluate(r.filter, test, buckets=buckets)
    return {"ablations_scratch": ablations, "source_paths": len(source), "target_paths": len(target),
            "test_paths": len(test),
            "sampling_seconds": sampling_s,
            "pretrain_seconds": pre.seconds, "pretrain_epochs": pre_epochs,
            "finetune_seconds": ft.seconds, "finetune_epochs": ft_epochs,
            "finetune_seconds_per_epoch": ft.seconds / max(1, ft_epochs), "finetune_best_epoch": ft.best_epoch,
            "quality_finetuned": q_ft, "quality_scratch": q_scratch, "quality_flops_only": q_ft["flops_only"]}


def _line(name, q):
    w = q["weak"]["0.25"]
    return (f"  {name:27s} tau(all) {q['kendall_tau']:+.3f}  tau(within buckets) {q['kendall_tau_within']:+.3f}  "
            f"weakest-25%: acc {w['accuracy']:.3f} prec {w['precision']:.3f} rec {w['recall']:.3f} "
            f"(paper-style recall {w['detected_fraction']:.3f})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sets and fewer epochs (a smoke run)")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--throughput-only", action="store_true", help="measure scoring only")
    ap.add_argument("--ablations", action="store_true",
                    help="also train each Table 2 ablation from scratch on the target paths")
    a = ap.parse_args(argv)
    res = {"throughput": throughput(2000 if a.quick else 20000), "load_average": os.getloadavg()}
    tp = res["throughput"]
    print(f"scoring throughput (paths/s, one process, this CPU; load average {res['load_average'][0]:.2f}):")
    for k, v in tp.items():
        if k != "n":
            print(f"  {k:36s} {v:10.0f}")
    if a.throughput_only:
        return res
    if a.quick:
        res["transfer"] = transfer(m_source=40, pre_epochs=1, ft_epochs=2, m_test=40, with_ablations=a.ablations)
    else:
        res["transfer"] = transfer(m_source=400, pre_epochs=6, ft_epochs=15, m_test=200,
                                   with_ablations=a.ablations)
    tr = res["transfer"]
    print(f"pre-train: {tr['source_paths']} source paths, {tr['pretrain_epochs']} epochs, "
          f"{tr['pretrain_seconds']:.1f} s")
    print(f"fine-tune: {tr['target_paths']} target paths, {tr['finetune_epochs']} epochs, "
          f"{tr['finetune_seconds']:.1f} s ({tr['finetune_seconds_per_epoch']:.2f} s/epoch, best epoch "
          f"{tr['finetune_best_epoch']})")
    print(f"quality on {tr['test_paths']} held-out target paths:")
    print(_line("fine-tuned filter", tr["quality_finetuned"]))
    print(_line("scratch (500 paths)", tr["quality_scratch"]))
    print(_line("FLOPs only", tr["quality_flops_only"]))
    for name, q in tr["ablations_scratch"].items():
        print(_line(f"scratch, {name}", q))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(json_safe(res), f, indent=1)
    return res


if __name__ == "__main__":
    main()
