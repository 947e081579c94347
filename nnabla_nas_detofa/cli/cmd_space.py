"""``flops`` and ``sample``: arch math from the command line.

``sample --space`` takes a space name, or a ``pruned_space.json`` (DetOFA's pruned space Ã,
sampled exactly uniformly; with ``--filter W.h5`` path-pruned by the thresholds it stores).
"""
import json
import os
import random
import sys

from ..schema import Int, Num, seed_spec
from ..space import (PARTS, SPACE_NAMES, ArchError, ConfigError, SpaceError, SupernetConfig, check_input_size,
                     load_archs, mflops, space_from_spec)
from .argtypes import flag
from .errors import UserError

SUPERNET_FLAGS = {"num_classes": "--num-classes", "width_mult": "--width-mult", "divisor": "--divisor"}
MAX_ARCHS = 10_000_000


SUPERNET_ARGS = ("num_classes", "width_mult", "divisor")


def add_supernet_args(p, defaults: bool = True):
    """``--num-classes``, ``--width-mult``, ``--divisor``, parsed as numbers here, their ranges are
    SupernetConfig's (one definition); without ``defaults`` they stay None when not given (a file
    then supplies them, see ``supernet_config(args, base)``)."""
    d = SupernetConfig()
    p.add_argument("--num-classes", type=flag(Int()), default=d.num_classes if defaults else None)
    p.add_argument("--width-mult", type=flag(Num()), default=d.width_mult if defaults else None,
                   help="base-width multiplier (1.0 = paper)")
    p.add_argument("--divisor", type=flag(Int()), default=d.divisor if defaults else None,
                   help="channel rounding (8 as once-for-all)")


def supernet_config(args, base: SupernetConfig = None) -> SupernetConfig:
    """The settings given on the command line; those not given come from ``base`` (or the defaults)."""
    base = base or SupernetConfig()
    kw = {k: getattr(args, k) if getattr(args, k, None) is not None else getattr(base, k) for k in SUPERNET_ARGS}
    try:
        return SupernetConfig(**{**base.to_dict(), **kw})
    except ConfigError as err:
        msg = str(err)
        name = SUPERNET_FLAGS.get(msg.partition("=")[0])
        raise UserError(f"{name}: {msg}" if name else msg) from None


def input_size_flag(value, name="--input-size") -> int:
    """``--input-size``: the space's rule (a positive multiple of 32), named by its flag."""
    try:
        return check_input_size(value, name)
    except ConfigError as err:
        raise UserError(str(err)) from None


def given_supernet_args(args):
    return {k: getattr(args, k) for k in SUPERNET_ARGS if getattr(args, k, None) is not None}


def run_flops(args):
    cfg = supernet_config(args)
    input_size_flag(args.input_size)
    try:
        archs = load_archs(args.arch)
    except OSError as err:
        raise UserError(f"{args.arch}: {err.strerror}") from None
    except ArchError as err:
        raise UserError(str(err)) from None
    for a in archs:
        try:
            v = mflops(a, cfg, args.input_size, args.part)
        except (ValueError, ConfigError) as err:
            raise UserError(str(err)) from None
        if len(archs) == 1 and not args.jsonl:
            print(f"{v:.6f}")
        else:
            print(json.dumps({"arch": a.to_dict(), "flops": v}))
    return 0


def is_space_file(spec: str) -> bool:
    return spec.endswith(".json") or os.path.sep in spec or os.path.isfile(spec)


def load_pruned_space(path, args):
    """A pruned space file; supernet settings / input size given on the command line must be its own."""
    from ..pruning import PrunedSpace
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such pruned space file (--space takes {', '.join(SPACE_NAMES)} or a "
                        "pruned_space.json)")
    pruned = PrunedSpace.load(path)
    given = given_supernet_args(args)
    pruned.check_settings(supernet_config(args, pruned.cfg) if given else None,
                          args.input_size or None, where=path)
    return pruned


def run_sample_pruned(args):
    from ..pruning import PruningError, file_sha256
    pruned = load_pruned_space(args.space, args)
    if args.mode == "decision":
        raise UserError("--mode decision: a pruned space is sampled uniformly over its paths "
                        "(--mode path, the default)")
    scorer = None
    if args.filter:
        from ..path_filter import PathFilter, PathFilterError
        if pruned.thresholds is None:
            raise UserError(f"{args.space}: no path-pruning thresholds ('path_pruning'), --filter has nothing to apply")
        rec = (pruned.thresholds.scorer_id or {}).get("sha256")
        if rec and os.path.isfile(args.filter) and file_sha256(args.filter) != rec:
            raise UserError(f"{args.filter}: not the path filter the thresholds of {args.space} were made with "
                            f"({pruned.thresholds.scorer_id.get('file')}, sha256 {rec[:12]}...)")
        try:
            scorer = PathFilter.load(args.filter)
        except PathFilterError as err:
            raise UserError(str(err)) from None
    try:
        sampler = pruned.sampler(scorer)
        for p in sampler.sample_many(random.Random(args.seed), args.n):
            sys.stdout.write(json.dumps(p.to_dict()) + "\n")
    except PruningError as err:
        raise UserError(str(err)) from None
    return 0


def run_sample(args):
    if is_space_file(args.space):
        return run_sample_pruned(args)
    if args.filter:
        raise UserError("--filter applies the path-pruning thresholds of a pruned space file (--space FILE)")
    cfg = supernet_config(args)
    if args.input_size:
        input_size_flag(args.input_size)
    if args.mode is None:
        args.mode = "decision"
    try:
        space = space_from_spec(args.space)
    except SpaceError as err:
        raise UserError(str(err)) from None
    rng = random.Random(args.seed)
    for _ in range(args.n):
        a = space.sample(rng, mode=args.mode)
        line = {"arch": a.to_dict()}
        if args.input_size:
            line["flops"] = mflops(a, cfg, args.input_size)
        sys.stdout.write(json.dumps(line) + "\n")
    return 0


def register(sub):
    p = sub.add_parser("flops", help="analytic MFLOPs (MACs / 1e6) of an arch JSON / JSON Lines file")
    p.add_argument("--arch", required=True, help="JSON file with one arch dict, a list, or JSON Lines")
    p.add_argument("--input-size", type=flag(Int()), default=384)
    p.add_argument("--part", choices=PARTS, default="detector")
    p.add_argument("--jsonl", action="store_true", help="always print one JSON line per arch")
    add_supernet_args(p)
    p.set_defaults(func=run_flops)

    p = sub.add_parser("sample", help="random archs of a search space as JSON lines")
    p.add_argument("--space", default="ofa", help=f"one of {', '.join(SPACE_NAMES)}, or a pruned_space.json "
                                                  "(sampled uniformly; lines also carry flops and bucket)")
    p.add_argument("-n", type=flag(Int(0, MAX_ARCHS)), default=10)
    p.add_argument("--seed", type=flag(seed_spec()), default=0)
    p.add_argument("--mode", choices=("decision", "path"), default=None,
                   help="decision (default for named spaces) or path (uniform over networks; pruned spaces)")
    p.add_argument("--input-size", type=flag(Int(0)), default=0, help="also print detector MFLOPs at this size")
    p.add_argument("--filter", help="path filter .h5: apply the path-pruning thresholds of --space FILE")
    add_supernet_args(p, defaults=False)
    p.set_defaults(func=run_sample)
