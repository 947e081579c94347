"""Search-space pruning on the real OFA space: |Ã| / |A|, sampler acceptance and cost per draw.

    .venv/bin/python benchmarks/bench_pruning.py [--quick] [--json OUT.json]

For the paper's setting (full width, 384 px) and the demo's (width 0.25, divisor 1, 96 px, 5
classes), with the paper's strategy ("FLOPs & score (all)", r_op1 = 0.1, r_op2 = 0.3, n = 100
paths per (operation, bucket), r_path = 0.25):

1. operation scores and pruning, scored by a known function (the synthetic task's loss, negated:
   a path filter that ranks perfectly), timed;
2. |Ã| / |A| (|Ã| estimated per bucket, with its standard error), per-bucket sizes;
3. the training sampler: microseconds per accepted draw (CPU time of this process), candidates per
   draw, acceptance measured against |Ã| / sum |P_b|;
4. path pruning with a path filter of the default architecture (untrained weights: its cost is
   what matters here) scoring with its numpy forward: thresholds, then microseconds per draw and
   paths scored per draw, one step at a time (``sample``) and by blocks of 64 steps
   (``sample_steps``, one filter call per round for the whole block).
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig, SyntheticTask  # noqa: E402
from nnabla_nas_detofa.path_filter.model import default_vocabulary  # noqa: E402
from nnabla_nas_detofa.pruning import operation_scores, path_thresholds, prune_space  # noqa: E402
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops, space_buckets  # noqa: E402

SETTINGS = {"paper (1.0, 384 px)": (SupernetConfig(), 384),
            "demo (0.25, divisor 1, 96 px)": (SupernetConfig(num_classes=5, width_mult=0.25, divisor=1), 96)}


def known_scorer(space, cfg, size):
    task = SyntheticTask(0)
    ref = mflops(space.extreme(False), cfg, size)

    def score(archs, flops, bucket):
        return np.array([-task.clean_loss(a, f, ref) for a, f in zip(archs, flops)])
    return score


def per_draw(sampler, n, seed0=0):
    t = time.process_time()
    w = time.perf_counter()
    draws = [sampler.sample(random.Random(seed0 + i)) for i in range(n)]
    cpu, wall = (time.process_time() - t) / n * 1e6, (time.perf_counter() - w) / n * 1e6
    return draws, cpu, wall


def run(name, cfg, size, quick):
    space = get_space("ofa")
    n = 20 if quick else 100
    scorer = known_scorer(space, cfg, size)
    t = time.process_time()
    scores = operation_scores(space, cfg, size, scorer, n=n, rng=1)
    t_scores = time.process_time() - t
    t = time.process_time()
    pruned = prune_space(space, cfg, size, scorer, "flops_score_all", r_op1=0.1, r_op2=0.3, scores=scores,
                         r_path=0.25, n_threshold=200 if quick else 1000, seed=0, size_draws=4000)
    t_prune = time.process_time() - t
    est = pruned.size_estimate
    draws, cpu, wall = per_draw(pruned.sampler(), 200 if quick else 1000)
    cand = np.mean([d.candidates for d in draws])
    pp_draws, pp_cpu, pp_wall = per_draw(pruned.sampler(scorer), 100 if quick else 300, 10_000)
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=space_buckets(space, cfg, size),
                                      supernet=cfg, input_size=size))
    thr = path_thresholds(pruned, flt, 0.25, n=200 if quick else 1000, rng=5)
    fs = pruned.sampler(flt, thr)
    f_draws, f_cpu, f_wall = per_draw(fs, 50 if quick else 200, 20_000)
    blocks = 2 if quick else 8
    t, w = time.process_time(), time.perf_counter()
    for k in range(blocks):
        fs.sample_steps([random.Random(30_000 + 64 * k + i) for i in range(64)])
    b_cpu = (time.process_time() - t) / (64 * blocks) * 1e6
    b_wall = (time.perf_counter() - w) / (64 * blocks) * 1e6
    out = {
        "setting": name, "n_per_cell": n, "cells": len(scores.rows),
        "cells_empty": sum(r.n == 0 for r in scores.rows), "cells_short": len(scores.short_cells()),
        "max_candidates_per_cell": max(r.drawn for r in scores.rows),
        "time_operation_scores_s": round(t_scores, 2), "time_prune_estimate_thresholds_s": round(t_prune, 2),
        "pruned_per_bucket": [len(p) for p in pruned.strategy["pruned"]],
        "size_full": est["full"], "size_pruned": est["estimate"], "size_pruned_stderr": est["stderr"],
        "ratio": est["ratio"],
        "per_bucket": [{k: r[k] for k in ("kept_product", "estimate", "stderr", "acceptance")}
                       for r in est["per_bucket"]],
        "sampler_acceptance_estimated": est["sampler_acceptance"],
        "sampler_acceptance_measured": 1.0 / cand,
        "uniform_draw_us_cpu": round(cpu, 1), "uniform_draw_us_wall": round(wall, 1),
        "path_pruned_known_scorer_us_cpu": round(pp_cpu, 1),
        "path_pruned_filter_us_cpu": round(f_cpu, 1), "path_pruned_filter_us_wall": round(f_wall, 1),
        "path_pruned_filter_block64_us_cpu": round(b_cpu, 1), "path_pruned_filter_block64_us_wall": round(b_wall, 1),
        "filter_paths_scored_per_draw": float(np.mean([d.scored for d in f_draws])),
        "filter_thresholds": thr.values,
        "draws_per_bucket": np.bincount([d.bucket for d in draws], minlength=5).tolist(),
    }
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    res = []
    for name, (cfg, size) in SETTINGS.items():
        r = run(name, cfg, size, args.quick)
        res.append(r)
        print(f"{name}:")
        print(f"  operation scores: {r['cells']} cells x {r['n_per_cell']} paths in {r['time_operation_scores_s']} s "
              f"({r['cells_empty']} cells hold no path, {r['cells_short']} short); prune + |Ã| + thresholds "
              f"{r['time_prune_estimate_thresholds_s']} s")
        print(f"  |Ã| / |A| = {r['size_pruned']:.4g} (+-{r['size_pruned_stderr']:.2g}) / {r['size_full']:.4g} = "
              f"{r['ratio']:.3g}; operations pruned per bucket {r['pruned_per_bucket']}")
        print(f"  uniform draw: {r['uniform_draw_us_cpu']} us CPU ({r['uniform_draw_us_wall']} us wall), acceptance "
              f"{r['sampler_acceptance_measured']:.3f} measured / {r['sampler_acceptance_estimated']:.3f} expected")
        print(f"  path-pruned draw, path filter: {r['path_pruned_filter_us_cpu']} us CPU "
              f"({r['path_pruned_filter_us_wall']} us wall), {r['filter_paths_scored_per_draw']:.2f} paths scored; "
              f"in blocks of 64 steps {r['path_pruned_filter_block64_us_cpu']} us CPU "
              f"({r['path_pruned_filter_block64_us_wall']} us wall) per step")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
