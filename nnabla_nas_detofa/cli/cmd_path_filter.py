"""``path-filter train | eval | score``: the path filter on any path set file (DetOFA §3)."""
import json
import os
import sys

from ..atomic import write_json_atomic
from ..path_filter import (PathFilter, PathFilterError, PathSet, PathSetError, evaluate, read_arch_lines,
                           train_path_filter)
from ..path_filter.quality import json_safe
from ..path_filter.train import SEED as TRAIN_SEED
from ..path_filter.train import TRAIN_OPTIONS
from ..schema import Int
from ..space import ArchError, ConfigError, SpaceError, mflops, space_from_spec
from .argtypes import flag
from .cmd_space import add_supernet_args, input_size_flag, supernet_config
from .errors import UserError

ABLATIONS = ("no-flops-bounded", "no-budget", "no-block-pe")
_ERRORS = (PathSetError, PathFilterError, ArchError, SpaceError, ConfigError)


def _read_pathset(path, space=None) -> PathSet:
    try:
        return PathSet.read(path, space)
    except OSError as err:
        raise UserError(f"{path}: {err.strerror or err}") from None
    except _ERRORS as err:
        raise UserError(str(err)) from None


def _load_filter(path) -> PathFilter:
    try:
        return PathFilter.load(path)
    except _ERRORS as err:
        raise UserError(str(err)) from None


def _dump(obj) -> str:
    return json.dumps(json_safe(obj), indent=1, allow_nan=False)


def run_train(args):
    try:
        space = space_from_spec(args.space)
    except SpaceError as err:
        raise UserError(str(err)) from None
    supernet, input_size = supernet_config(args), None     # the flags are checked even when unused
    if args.input_size is not None:
        input_size = input_size_flag(args.input_size)
    else:
        supernet = None
    pathset = _read_pathset(args.paths, space)
    test = _read_pathset(args.test_paths, space) if args.test_paths else None
    abl = set(args.ablation or ())
    out = os.path.abspath(args.output)
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"-o {args.output}: exists and is not a folder")
    init = None
    if args.init:
        init = _load_filter(args.init)
    try:
        res = train_path_filter(pathset, space=space, supernet=supernet, input_size=input_size, init=init,
                                budget=False if "no-budget" in abl else None,
                                block_pe=False if "no-block-pe" in abl else None,
                                flops_bounded="no-flops-bounded" not in abl, epochs=args.epochs, seed=args.seed,
                                lr=args.lr, batch_size=args.batch_size,
                                log=(lambda m: print(m, file=sys.stderr)) if args.verbose else None)
    except PathFilterError as err:
        raise UserError(str(err)) from None
    os.makedirs(args.output, exist_ok=True)
    weights = os.path.join(args.output, "path_filter.h5")
    res.filter.save(weights)
    quality = {"validation": res.quality(pathset.subset(res.val_index)),
               "training": {"best_epoch": res.best_epoch, "best_val_loss": res.best_val_loss,
                            "seconds": res.seconds, "n_train": int(len(res.train_index)),
                            "n_val": int(len(res.val_index)), "ablation": sorted(abl), "history": res.history}}
    if test is not None:
        quality["test"] = res.quality(test)
    qpath = os.path.join(args.output, "quality.json")
    write_json_atomic(qpath, quality, indent=1)
    v = quality["validation"]
    print(json.dumps(json_safe({"weights": weights, "quality": qpath, "best_epoch": res.best_epoch,
                                "val_kendall_tau_within": v["kendall_tau_within"],
                                "val_flops_only_kendall_tau_within": v["flops_only"]["kendall_tau_within"]})))
    return 0


def run_eval(args):
    flt = _load_filter(args.weights)
    pathset = _read_pathset(args.paths)
    print(_dump(evaluate(flt, pathset)))
    return 0


def run_score(args):
    flt = _load_filter(args.weights)
    try:
        lines = read_arch_lines(args.archs)
    except OSError as err:
        raise UserError(f"{args.archs}: {err.strerror or err}") from None
    except _ERRORS as err:
        raise UserError(str(err)) from None
    c = flt.config
    flops = []
    for where, _, arch, f in lines:
        if f is None:
            if c.supernet is None or c.input_size is None:
                raise UserError(f"{where}: no 'flops', and the filter {args.weights} does not know the "
                                "supernet / input size to compute them (train it with --input-size)")
            f = mflops(arch, c.supernet, c.input_size)
        flops.append(f)
    scores = flt.score([a for _, _, a, _ in lines], flops=flops)
    buckets = c.buckets.indices(flops)
    out = sys.stdout
    for (_, obj, _, _), f, b, s in zip(lines, flops, buckets, scores):
        rec = dict(obj)
        rec.update({"flops": float(f), "bucket": int(b), "score": float(s)})
        out.write(json.dumps(rec) + "\n")
    return 0


def register(sub):
    p = sub.add_parser("path-filter", help="train / evaluate / apply a path filter on path set files")
    ps = p.add_subparsers(dest="path_filter_command", metavar="ACTION")
    ps.required = True

    t = ps.add_parser("train", help="train (or fine-tune with --init) a path filter on a JSON Lines path set")
    t.add_argument("--paths", required=True, help="path set: one {\"arch\", \"flops\", \"val_loss\"} a line")
    t.add_argument("--test-paths", help="held-out path set also reported in quality.json")
    t.add_argument("--init", help="weights (.h5, with its .json) to fine-tune from")
    t.add_argument("--ablation", nargs="+", action="extend", choices=ABLATIONS, default=[],
                   help="switch parts off (Table 2 ablations)")
    for name in ("--epochs", "--lr", "--batch-size"):     # ranges and defaults: train_path_filter's
        spec = TRAIN_OPTIONS[name[2:].replace("-", "_")]
        t.add_argument(name, type=flag(spec), default=spec.default)
    t.add_argument("--seed", type=flag(TRAIN_SEED), default=TRAIN_SEED.default)
    t.add_argument("--space", default="ofa", help="search space the paths come from (vocabulary, validation)")
    t.add_argument("--input-size", type=flag(Int()), default=None,
                   help="input size of the FLOPs: buckets come from the space's FLOPs range and the filter can "
                        "score archs without FLOPs; without it buckets span the path set's FLOPs")
    add_supernet_args(t)
    t.add_argument("-o", "--output", required=True, help="output folder")
    t.add_argument("-v", "--verbose", action="store_true", help="log every epoch to stderr")
    t.set_defaults(func=run_train)

    e = ps.add_parser("eval", help="print the quality report (JSON) of a filter on a path set")
    e.add_argument("--paths", required=True)
    e.add_argument("--weights", required=True, help="path_filter.h5 (its .json next to it)")
    e.set_defaults(func=run_eval)

    s = ps.add_parser("score", help="score archs: one JSON line per input line, in order, with \"score\"")
    s.add_argument("--archs", required=True, help="JSON Lines: {\"arch\": ..., [\"flops\": ...]} or bare arch dicts")
    s.add_argument("--weights", required=True)
    s.set_defaults(func=run_score)
