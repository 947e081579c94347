"""``path-filter train | eval | score | baseline``: the path filter on any path set file (DetOFA §3).

Quality reports say which paths they were computed on (``computed_on``, ``held_out``): ``train``
reports the filter on paths that neither trained it nor selected its checkpoint (``--test-paths``,
else a stratified test split of ``--paths``, ``--test-fraction``), and separately, marked as
such, on the validation split that selected the checkpoint.
"""
import json
import os
import sys

from ..atomic import write_json_atomic
from ..path_filter import (PathFilter, PathFilterError, PathSet, PathSetError, evaluate, read_arch_lines,
                           train_path_filter)
from ..path_filter.baselines import KINDS, fit_baseline
from ..path_filter.quality import json_safe
from ..path_filter.train import SEED as TRAIN_SEED
from ..path_filter.train import (LOSS_ON, SELECT, TRAIN_OPTIONS, check_train_options, held_out_quality,
                                 resolve_buckets, validation_quality)
from ..schema import Int, SchemaError
from ..space import ArchError, ConfigError, SpaceError, mflops, space_from_spec
from .argtypes import flag
from .cmd_space import add_supernet_args, input_size_flag, supernet_config
from .errors import UserError

ABLATIONS = ("no-flops-bounded", "no-budget", "no-block-pe", "no-wide")
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


# --- flag checks (before any file is read; each flag's range is checked by argparse) -----------
def _space_and_buckets_args(args):
    try:
        space = space_from_spec(args.space)
    except SpaceError as err:
        raise UserError(str(err)) from None
    supernet, input_size = supernet_config(args), None     # the flags are checked even when unused
    if args.input_size is not None:
        input_size = input_size_flag(args.input_size)
    else:
        supernet = None
    return space, supernet, input_size


def _fractions(args):
    if args.test_fraction is None:
        args.test_fraction = 0.0 if args.test_paths else 0.2
    if args.val_fraction + args.test_fraction >= 1:
        raise UserError(f"--val-fraction={args.val_fraction} + --test-fraction={args.test_fraction}: "
                        "expected a sum below 1")


def _output_folder(args):
    if args.output and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UserError(f"-o {args.output}: exists and is not a folder")


def run_train(args):
    space, supernet, input_size = _space_and_buckets_args(args)
    _fractions(args)
    _output_folder(args)
    try:
        check_train_options({"epochs": args.epochs}, bool(args.init), "path-filter train")
    except SchemaError as err:
        raise UserError(str(err)) from None
    abl = set(args.ablation or ())
    pathset = _read_pathset(args.paths, space)
    test = _read_pathset(args.test_paths, space) if args.test_paths else None
    init = _load_filter(args.init) if args.init else None
    try:
        res = train_path_filter(pathset, space=space, supernet=supernet, input_size=input_size, init=init,
                                budget=False if "no-budget" in abl else None,
                                block_pe=False if "no-block-pe" in abl else None,
                                wide=False if "no-wide" in abl else None,
                                flops_bounded="no-flops-bounded" not in abl, epochs=args.epochs,
                                patience=args.patience, seed=args.seed, lr=args.lr, wide_lr=args.wide_lr,
                                weight_decay=args.weight_decay, batch_size=args.batch_size,
                                val_fraction=args.val_fraction, test_fraction=args.test_fraction,
                                ensemble=args.ensemble, bagging=not args.no_bagging, select=args.select,
                                loss_on=args.loss_on,
                                warm_up=not args.no_warm_up,
                                log=(lambda m: print(m, file=sys.stderr)) if args.verbose else None)
    except PathFilterError as err:
        raise UserError(str(err)) from None
    os.makedirs(args.output, exist_ok=True)
    weights = os.path.join(args.output, "path_filter.h5")
    res.filter.save(weights)
    quality = {"validation": validation_quality(res, pathset),
               "training": dict(res.summary(), ablation=sorted(abl), history=res.history,
                                test_index=res.test_index.tolist(), val_index=res.val_index.tolist())}
    if test is not None or len(res.test_index):
        quality["test"] = held_out_quality(res, pathset, test, test_name=f"--test-paths {args.test_paths}")
    qpath = os.path.join(args.output, "quality.json")
    write_json_atomic(qpath, quality, indent=1)
    q = quality.get("test", quality["validation"])
    print(json.dumps(json_safe({"weights": weights, "quality": qpath, "best_epoch": res.best_epoch,
                                "stopped": res.stopped, "computed_on": q["computed_on"],
                                "kendall_tau_within": q["kendall_tau_within"],
                                "weak_0.25_precision": q["weak"].get("0.25", {}).get("precision"),
                                "flops_only_kendall_tau_within": q["flops_only"]["kendall_tau_within"]})))
    return 0


def run_eval(args):
    flt = _load_filter(args.weights)
    pathset = _read_pathset(args.paths)
    rep = evaluate(flt, pathset)
    rep["computed_on"] = f"--paths {args.paths}: {len(pathset)} paths"
    print(_dump(rep))
    return 0


def run_baseline(args):
    space, supernet, input_size = _space_and_buckets_args(args)
    _fractions(args)
    _output_folder(args)
    pathset = _read_pathset(args.paths, space)
    test = _read_pathset(args.test_paths, space) if args.test_paths else None
    buckets = resolve_buckets(pathset, None, space, supernet, input_size)
    try:
        res = fit_baseline(args.kind, pathset, buckets=buckets, val_fraction=args.val_fraction,
                           test_fraction=args.test_fraction, seed=args.seed)
    except PathFilterError as err:
        raise UserError(str(err)) from None
    if test is not None:
        rep = evaluate(res.ranker, test, buckets=buckets)
        rep["computed_on"] = (f"--test-paths {args.test_paths}: {len(test)} paths not used for fitting or "
                              "model selection")
        rep["held_out"] = True
    elif len(res.test_index):
        rep = evaluate(res.ranker, pathset.subset(res.test_index), buckets=buckets)
        rep["computed_on"] = (f"test split: {len(res.test_index)} paths of --paths {args.paths} (stratified by "
                              "bucket) not used for fitting or model selection")
        rep["held_out"] = True
    else:
        rep = evaluate(res.ranker, pathset.subset(res.val_index), buckets=buckets)
        rep["computed_on"] = (f"validation split: {len(res.val_index)} paths that selected the model "
                              "(optimistic; not a held-out figure)")
        rep["held_out"] = False
    rep["baseline"] = res.info
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        write_json_atomic(os.path.join(args.output, "quality.json"), rep, indent=1)
    print(_dump(rep))
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


def _add_data_args(p, test_help):
    p.add_argument("--paths", required=True, help="path set: one {\"arch\", \"flops\", \"val_loss\"} a line")
    p.add_argument("--test-paths", help=test_help)
    p.add_argument("--val-fraction", type=flag(TRAIN_OPTIONS["val_fraction"]),
                   default=TRAIN_OPTIONS["val_fraction"].default,
                   help="share of every bucket of --paths used for model selection")
    p.add_argument("--test-fraction", type=flag(TRAIN_OPTIONS["test_fraction"]), default=None,
                   help="share of every bucket of --paths held out for the quality report (default 0.2, or 0 "
                        "with --test-paths)")
    p.add_argument("--seed", type=flag(TRAIN_SEED), default=TRAIN_SEED.default)
    p.add_argument("--space", default="ofa", help="search space the paths come from (vocabulary, validation)")
    p.add_argument("--input-size", type=flag(Int()), default=None,
                   help="input size of the FLOPs: buckets come from the space's FLOPs range and the filter can "
                        "score archs without FLOPs; without it buckets span the path set's FLOPs")
    add_supernet_args(p)


def register(sub):
    p = sub.add_parser("path-filter", help="train / evaluate / apply a path filter on path set files")
    ps = p.add_subparsers(dest="path_filter_command", metavar="ACTION")
    ps.required = True

    t = ps.add_parser("train", help="train (or fine-tune with --init) a path filter on a JSON Lines path set")
    _add_data_args(t, "held-out path set: the quality report is computed on it")
    t.add_argument("--init", help="weights (.h5, with its .json) to fine-tune from")
    t.add_argument("--ablation", nargs="+", action="extend", choices=ABLATIONS, default=[],
                   help="switch parts off (Table 2 ablations; no-wide: the transformer alone)")
    helps = {"epochs": "epoch cap", "patience": "stop after this many epochs without a better validation score",
             "lr": "Adam learning rate of the network", "wide_lr": "Adam learning rate of the wide head",
             "weight_decay": None, "batch_size": "paths per batch (one bucket)",
             "ensemble": "networks averaged (seeds seed..; each its own validation split unless --no-bagging)"}
    for name, text in helps.items():       # ranges and defaults: train_path_filter's TRAIN_OPTIONS
        spec = TRAIN_OPTIONS[name]
        t.add_argument("--" + name.replace("_", "-"), type=flag(spec), default=spec.default, help=text)
    t.add_argument("--select", choices=SELECT, default=TRAIN_OPTIONS["select"].default,
                   help="checkpoint selection on the validation split: within-bucket Kendall tau or the loss")
    t.add_argument("--loss-on", choices=LOSS_ON, default=TRAIN_OPTIONS["loss_on"].default,
                   help="pairwise loss on the logit (default) or on the sigmoid score (DETOFA.md's literal form)")
    t.add_argument("--no-bagging", action="store_true",
                   help="every ensemble member on the same train / validation split")
    t.add_argument("--no-warm-up", action="store_true",
                   help="train the wide head jointly from the start (no linear warm-up of the wide head)")
    t.add_argument("-o", "--output", required=True, help="output folder")
    t.add_argument("-v", "--verbose", action="store_true", help="log every epoch to stderr")
    t.set_defaults(func=run_train)

    e = ps.add_parser("eval", help="print the quality report (JSON) of a filter on a path set")
    e.add_argument("--paths", required=True)
    e.add_argument("--weights", required=True, help="path_filter.h5 (its .json next to it)")
    e.set_defaults(func=run_eval)

    b = ps.add_parser("baseline", help="fit a baseline ranker (flops, ridge, mlp) and print its quality report")
    b.add_argument("--kind", required=True, choices=KINDS,
                   help="flops: FLOPs only; ridge: ridge on one-hot choices + log FLOPs; mlp: 3 x 400 ReLU")
    _add_data_args(b, "held-out path set: the quality report is computed on it")
    b.add_argument("-o", "--output", help="output folder: writes OUT/quality.json")
    b.set_defaults(func=run_baseline)

    s = ps.add_parser("score", help="score archs: one JSON line per input line, in order, with \"score\"")
    s.add_argument("--archs", required=True, help="JSON Lines: {\"arch\": ..., [\"flops\": ...]} or bare arch dicts")
    s.add_argument("--weights", required=True)
    s.set_defaults(func=run_score)
