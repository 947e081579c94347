"""``flops`` and ``sample``: arch math from the command line."""
import json
import random
import sys

from ..schema import Int, Num, seed_spec
from ..space import (PARTS, SPACE_NAMES, ArchError, ConfigError, SpaceError, SupernetConfig, check_input_size,
                     load_archs, mflops, space_from_spec)
from .argtypes import flag
from .errors import UserError

SUPERNET_FLAGS = {"num_classes": "--num-classes", "width_mult": "--width-mult", "divisor": "--divisor"}
MAX_ARCHS = 10_000_000


def add_supernet_args(p):
    """The supernet flags: parsed as numbers here, their ranges are SupernetConfig's (one definition)."""
    d = SupernetConfig()
    p.add_argument("--num-classes", type=flag(Int()), default=d.num_classes)
    p.add_argument("--width-mult", type=flag(Num()), default=d.width_mult, help="base-width multiplier (1.0 = paper)")
    p.add_argument("--divisor", type=flag(Int()), default=d.divisor, help="channel rounding (8 as once-for-all)")


def supernet_config(args) -> SupernetConfig:
    try:
        return SupernetConfig(num_classes=args.num_classes, width_mult=args.width_mult, divisor=args.divisor)
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


def run_sample(args):
    cfg = supernet_config(args)
    if args.input_size:
        input_size_flag(args.input_size)
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
    p.add_argument("--space", default="ofa", help=f"one of {', '.join(SPACE_NAMES)}")
    p.add_argument("-n", type=flag(Int(0, MAX_ARCHS)), default=10)
    p.add_argument("--seed", type=flag(seed_spec()), default=0)
    p.add_argument("--mode", choices=("decision", "path"), default="decision")
    p.add_argument("--input-size", type=flag(Int(0)), default=0, help="also print detector MFLOPs at this size")
    add_supernet_args(p)
    p.set_defaults(func=run_sample)
