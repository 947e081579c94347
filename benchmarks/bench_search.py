"""Search benchmark (CPU): regularized evolution vs once-for-all's truncation evolution vs random
search, best fitness vs number of fitness calls, under a FLOPs budget; and the latency table's
error against whole networks.

    .venv/bin/python benchmarks/bench_search.py [--quick] [--json OUT.json]

1. Path-filter fitness (the paper's search): a path filter trained on a synthetic path set (m
   paths per FLOPs bucket whose losses follow a known function of the arch,
   ``path_filter.synthetic``) scores paths of the full OFA space (full width, 384 px); budget:
   the middle FLOPs bucket (40-60 % of the space's range: the filter ranks paths within a
   bucket). Regularized evolution (P = 100, S = 25, 500 generations of
   P children), truncation evolution (P = 100, 500 generations) and random search with as many
   calls as the evolutions made; best fitness after n calls for all three, the time of 500
   generations including scoring (goal <= 20 s on CPU), and the true (noise-free) loss of each
   algorithm's best path.
2. Known optimum: fitness = - weighted number of decisions that differ from a hidden target path
   whose FLOPs are the budget (``search.synthetic.TargetFitness``); calls to reach the optimum.
3. Latency table at test scale (1/16 width, 64 px, cpu): measure every layer of the OFA space,
   time whole extracted networks, report the relative error of the table's sums.
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from nnabla_nas_detofa.atomic import json_safe, write_json_atomic  # noqa: E402
from nnabla_nas_detofa.search import (TargetFitness, flops_constraint, path_filter_fitness, random_search,  # noqa: E402
                                      regularized_evolution, truncation_evolution)
from nnabla_nas_detofa.space import SupernetConfig, flops_range, get_space, mflops, param_count  # noqa: E402

CFG, SIZE = SupernetConfig(), 384
BUCKET = 2  # of 5


def checkpoints(n_max):
    pts = [n for n in (100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000) if n < n_max]
    return pts + [n_max]


class Timed:
    """The fitness, with the wall and CPU seconds spent inside it."""

    def __init__(self, fitness):
        self.fitness, self.wall, self.cpu, self.batches = fitness, 0.0, 0.0, 0

    def __call__(self, archs):
        self.batches += 1
        t, c = time.perf_counter(), time.process_time()
        try:
            return self.fitness(archs)
        finally:
            self.wall += time.perf_counter() - t
            self.cpu += time.process_time() - c


def timed_run(fn, fitness):
    f = Timed(fitness)
    t, c = time.perf_counter(), time.process_time()
    res = fn(f)
    return res, {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "scoring_wall": f.wall,
                 "scoring_cpu": f.cpu, "fitness_batches": f.batches}


def compare(fitness, space, constraint, generations, label, true_loss=None):
    out = {"label": label}
    re, re_s = timed_run(lambda f: regularized_evolution(space, f, [constraint], population_size=100, sample_size=25,
                                                         generations=generations, seed=0), fitness)
    te, te_s = timed_run(lambda f: truncation_evolution(space, f, [constraint], population_size=100,
                                                        generations=generations, seed=0), fitness)
    n = max(re.calls, te.calls)
    rs, rs_s = timed_run(lambda f: random_search(space, f, [constraint], n_calls=n, seed=0), fitness)
    pts = checkpoints(n)
    rows = {}
    for name, res, sec in (("regularized", re, re_s), ("truncation", te, te_s), ("random", rs, rs_s)):
        rows[name] = {"seconds": sec, "calls": res.calls, "requests": res.requests,
                      "best_after": {str(p): res.best_after(p) for p in pts}, "best_fitness": res.best_fitness,
                      "best_arch": res.best_arch.to_dict(), "flops": res.metrics["flops"],
                      "calls_to_best": int(np.argmax(res.trace)) + 1,
                      "params_M": param_count(res.best_arch, CFG) / 1e6}
        if true_loss is not None:
            rows[name]["true_loss"] = true_loss(res.best_arch)
    out.update(rows=rows, checkpoints=pts, generations=generations, budget=constraint.limit)
    print(f"\n{label}: {constraint.describe()}; best fitness after n calls (a call = one distinct path scored)")
    print("  calls      " + "".join(f"{p:>10d}" for p in pts))
    for name, r in rows.items():
        print(f"  {name:11s}" + "".join(f"{r['best_after'][str(p)]:10.5f}" if r["best_after"][str(p)] > -1e300
                                        else f"{'-':>10s}" for p in pts))
    for name, r in rows.items():
        extra = f", true loss of the best {r['true_loss']:.4f}" if "true_loss" in r else ""
        sec = r["seconds"]
        print(f"  {name:11s} {r['calls']:6d} calls ({r['requests']} paths asked, memo hits free), "
              f"{sec['wall']:5.1f} s wall / {sec['cpu']:5.1f} s CPU (scoring {sec['scoring_cpu']:.1f} s CPU in "
              f"{sec['fitness_batches']} batches), "
              f"best {r['best_fitness']:.5f} (reached at call {r['calls_to_best']}) at {r['flops']:.0f} MFLOPs, "
              f"{r['params_M']:.1f} M params{extra}")
    for name in ("regularized", "truncation"):
        sec = rows[name]["seconds"]
        print(f"  {generations} generations in {sec['wall']:.1f} s including scoring ({name} evolution; CPU time "
              f"{sec['cpu']:.1f} s: scoring {sec['scoring_cpu']:.1f} s, the search itself "
              f"{sec['cpu'] - sec['scoring_cpu']:.1f} s)")
    return out


def path_filter_part(quick):
    from nnabla_nas_detofa.path_filter import SyntheticTask, synthetic_pathset, train_path_filter
    space = get_space("ofa")
    task = SyntheticTask(0)
    m, epochs = (40, 2) if quick else (100, 6)
    t = time.perf_counter()
    paths = synthetic_pathset(task, space, CFG, SIZE, m, seed=1)
    tr = train_path_filter(paths, space=space, supernet=CFG, input_size=SIZE, epochs=epochs, seed=0)
    train_s = time.perf_counter() - t
    print(f"path filter: {len(paths)} synthetic paths ({m} per bucket), {epochs} epochs, {train_s:.1f} s "
          f"(sampling + training)")
    lo, hi = flops_range(space, CFG, SIZE)
    b_lo, b_hi = tr.buckets.bounds(BUCKET)
    c = flops_constraint(b_hi, CFG, SIZE, min_mflops=b_lo)
    fit = path_filter_fitness(tr.filter, CFG, SIZE)
    t = time.perf_counter()
    probe = [space.sample(random.Random(i)) for i in range(2000)]
    fit(probe)
    rate = len(probe) / (time.perf_counter() - t)
    print(f"path-filter fitness: {rate:.0f} paths/s batched (FLOPs included)")
    true = lambda a: task.clean_loss(a, mflops(a, CFG, SIZE), lo)  # noqa: E731
    res = compare(fit, space, c, 50 if quick else 500, "path-filter fitness", true_loss=true)
    res.update(train_seconds=train_s, scoring_paths_per_s=rate, pathset=len(paths))
    return res


def target_part(quick):
    space = get_space("ofa")
    lo, hi = flops_range(space, CFG, SIZE)
    rng = random.Random(12345)
    while True:
        target = space.sample(rng)
        f = mflops(target, CFG, SIZE)
        if lo + 0.3 * (hi - lo) < f < lo + 0.5 * (hi - lo):
            break
    fit = TargetFitness(target, seed=0)
    c = flops_constraint(f, CFG, SIZE)   # the optimum sits on the budget's edge
    res = compare(fit, space, c, 30 if quick else 100, "known optimum (fitness 0 = the target)")
    for name, r in res["rows"].items():
        r["reached_optimum"] = r["best_fitness"] == 0.0
    return res


def latency_part(quick):
    from nnabla_nas_detofa.nets.latency import layer_spread, measure_latency_table, validate_table
    from nnabla_nas_detofa.runners.context import make_context, use_context
    use_context(make_context("cpu")[0])
    cfg, size = SupernetConfig(num_classes=20, width_mult=1 / 16, divisor=1), 64
    space = get_space("ofa")
    t = time.perf_counter()
    table = measure_latency_table(space, cfg, size, batch_size=1, context="cpu", warmup=2 if quick else 3,
                                  repeats=5 if quick else 15)
    measure_s = time.perf_counter() - t
    rng = random.Random(0)
    archs = [space.extreme(False), space.extreme(True)] + [space.sample(rng) for _ in range(2 if quick else 8)]
    t = time.perf_counter()
    val = validate_table(table, archs)
    val_s = time.perf_counter() - t
    load = os.getloadavg()[0]
    print(f"\nlatency table (cpu, process CPU time, 1/16 width, 64 px, batch 1; load average {load:.1f} on "
          f"{os.cpu_count()} cores): {len(table.layers)} layers measured in {measure_s:.1f} s "
          f"({table.repeats} rounds, median; std/median per layer, median over layers {layer_spread(table):.3f})")
    print(f"  whole networks: {val['networks']} timed in {val_s:.1f} s; table sum vs measured: |relative error| "
          f"mean {val['mean_abs_relative_error']:.3f}, max {val['max_abs_relative_error']:.3f} (signed mean "
          f"{val['mean_relative_error']:+.3f})")
    print(f"  the same networks' layers re-timed in the same rounds (decomposition error without drift): "
          f"mean {val['paired_mean_abs_relative_error']:.3f}, max {val['paired_max_abs_relative_error']:.3f} "
          f"(signed mean {val['paired_mean_relative_error']:+.3f})")
    for r in val["rows"]:
        print(f"    measured {r['measured_ms']:7.3f} ms  table {r['predicted_ms']:7.3f} ms ({r['relative_error']:+.3f})"
              f"  same-round layers {r['paired_predicted_ms']:7.3f} ms ({r['paired_relative_error']:+.3f})"
              f"  spread of repeats {r['measured_spread']:.3f}")
    return {"layers": len(table.layers), "measure_seconds": measure_s, "layer_spread": layer_spread(table),
            "validation": val, "load_average": load}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 / 30 generations, a smaller filter (a smoke run)")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args(argv)
    res = {"load_average_start": os.getloadavg()[0]}
    print(f"load average at start: {res['load_average_start']:.2f} ({os.cpu_count()} cores)")
    res["path_filter"] = path_filter_part(a.quick)
    res["known_optimum"] = target_part(a.quick)
    if not a.skip_latency:
        res["latency"] = latency_part(a.quick)
    if a.json:
        write_json_atomic(a.json, json_safe(res), indent=1)
    return res


if __name__ == "__main__":
    main()
