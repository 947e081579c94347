"""``prune``: DetOFA §3.2 from the command line: a path filter in, ``pruned_space.json`` out."""
import json
import os
import sys

from ..pruning import STRATEGIES, PruningError, filter_id, prune_space
from ..space import ConfigError, SpaceError, check_input_size, space_from_spec
from .cmd_space import add_supernet_args, given_supernet_args, supernet_config
from .errors import UserError


def run_prune(args):
    from ..path_filter import PathFilter, PathFilterError
    try:
        flt = PathFilter.load(args.filter)
    except PathFilterError as err:
        raise UserError(str(err)) from None
    # the filter knows what its FLOPs mean when it was trained with them; flags must agree
    cfg = supernet_config(args, flt.config.supernet)
    if flt.config.supernet is not None and given_supernet_args(args) and cfg != flt.config.supernet:
        raise UserError(f"{args.filter}: trained for supernet {flt.config.supernet.to_dict()}, not {cfg.to_dict()}")
    size = args.input_size or flt.config.input_size
    if size is None:
        raise UserError(f"{args.filter}: the filter does not record its input size; pass --input-size")
    if flt.config.input_size is not None and size != flt.config.input_size:
        raise UserError(f"{args.filter}: trained at input size {flt.config.input_size}, not {size}")
    try:
        size = check_input_size(size, "--input-size")
        space = space_from_spec(args.space)
    except (ConfigError, SpaceError) as err:
        raise UserError(str(err)) from None
    ratios = {"r_op": args.r_op, "r_op1": args.r_op1, "r_op2": args.r_op2}
    if args.strategy == "flops_score_all":
        ratios["r_op1"] = 0.1 if args.r_op1 is None else args.r_op1
        ratios["r_op2"] = 0.3 if args.r_op2 is None else args.r_op2
    elif args.r_op is None:
        ratios["r_op"] = 0.3
    try:
        pruned = prune_space(space, cfg, size, flt, strategy=args.strategy, n=args.n, n_buckets=flt.config.buckets.n,
                             r_path=None if args.r_path < 0 else args.r_path, n_threshold=args.n_threshold,
                             seed=args.seed, scorer_id=filter_id(args.filter), **ratios)
    except PruningError as err:
        raise UserError(str(err)) from None
    pruned.save(args.output)
    est = pruned.size_estimate
    summary = {"output": os.path.abspath(args.output), "strategy": pruned.strategy["strategy"],
               "pruned_per_bucket": [len(p) for p in pruned.strategy["pruned"]],
               "size_full": est["full"], "size_pruned": est["estimate"], "ratio": est["ratio"],
               "sampler_acceptance": est["sampler_acceptance"],
               "thresholds": None if pruned.thresholds is None else pruned.thresholds.values}
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def register(sub):
    p = sub.add_parser("prune", help="operation scores, operation pruning and path-pruning thresholds "
                                     "(DetOFA §3.2) -> pruned_space.json")
    p.add_argument("--filter", required=True, help="path filter .h5 (with its .json)")
    p.add_argument("--space", default="ofa", help="the space to prune (a name; default ofa)")
    p.add_argument("--strategy", choices=STRATEGIES, default="flops_score_all")
    p.add_argument("--r-op", type=float, help="ratio for 'flops' / 'flops_score_bucket' (default 0.3)")
    p.add_argument("--r-op1", type=float, help="'flops_score_all' stage 1, over all buckets (default 0.1)")
    p.add_argument("--r-op2", type=float, help="'flops_score_all' stage 2, per bucket (default 0.3)")
    p.add_argument("--n", type=int, default=100, help="paths per (operation, bucket) score (default 100)")
    p.add_argument("--r-path", type=float, default=0.25, help="path-pruning quantile (default 0.25; -1: none)")
    p.add_argument("--n-threshold", type=int, default=1000, help="paths per bucket for the thresholds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-size", type=int, default=0, help="default: the filter's")
    p.add_argument("-o", "--output", required=True, help="pruned_space.json to write")
    add_supernet_args(p, defaults=False)
    p.set_defaults(func=run_prune)
