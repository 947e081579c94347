"""``measure-latency``: a latency lookup table of every distinct layer of a space, on this device."""
import random
import sys
import time

from ..schema import Int, seed_spec
from ..space import SPACE_NAMES, SpaceError, space_from_spec
from .argtypes import flag
from .cmd_space import add_supernet_args, input_size_flag, supernet_config
from .errors import UserError

MAX_REPEATS = 100_000
MAX_NETWORKS = 10_000


def _progress(every):
    start = time.perf_counter()

    def report(i, n, key, ms):
        if i == n or i % every == 0:
            el = time.perf_counter() - start
            print(f"  [{i}/{n}] {el:.1f} s elapsed, ~{el / i * (n - i):.0f} s left; last {key}: {ms:.3f} ms",
                  file=sys.stderr, flush=True)

    return report


def run_measure_latency(args):
    from ..nets.latency import layer_spread, measure_latency_table, validate_table
    from ..runners.context import make_context, use_context
    from ..space.layers import space_layers

    cfg = supernet_config(args)
    size = input_size_flag(args.input_size)
    try:
        space = space_from_spec(args.space, where="--space")
    except SpaceError as err:
        raise UserError(str(err)) from None
    ctx, _ = make_context(args.context, args.device_id)
    use_context(ctx)
    n = len(space_layers(space, cfg, size))
    clock = None if args.clock == "auto" else args.clock
    print(f"measure-latency: {n} distinct layers of space '{space.name}' at {size} px, batch {args.batch}, "
          f"context {args.context}, {args.warmup} warm-up + {args.repeats} timed rounds", file=sys.stderr, flush=True)
    t = time.perf_counter()
    table = measure_latency_table(space, cfg, size, args.batch, args.context, args.device_id, args.warmup,
                                  args.repeats, clock=clock, group=args.group, progress=_progress(max(1, n // 10)))
    seconds = time.perf_counter() - t
    print(f"measured {len(table.layers)} layers in {seconds:.1f} s (clock {table.clock}; median std/median over "
          f"layers {layer_spread(table):.3f})", flush=True)
    if args.validate:
        rng = random.Random(args.seed)
        archs = [space.extreme(False), space.extreme(True)] + [space.sample(rng) for _ in range(args.validate - 2)]
        archs = archs[:args.validate]
        val = validate_table(table, archs, progress=_progress(max(1, args.validate // 5)) if args.validate > 5
                             else None)
        table.validation = val
        print(f"validation on {val['networks']} whole networks: |relative error| mean "
              f"{val['mean_abs_relative_error']:.3f}, max {val['max_abs_relative_error']:.3f} (signed mean "
              f"{val['mean_relative_error']:+.3f}); their layers re-timed in the same rounds: mean "
              f"{val['paired_mean_abs_relative_error']:.3f}, max {val['paired_max_abs_relative_error']:.3f}",
              flush=True)
    try:
        table.save(args.output)
    except OSError as err:
        raise UserError(f"{args.output}: cannot write the table ({err.strerror or err})") from None
    print(f"wrote {args.output}")
    return 0


def register(sub):
    p = sub.add_parser("measure-latency",
                       help="time every distinct layer of a space on this device: a latency lookup table (JSON)")
    p.add_argument("--input-size", type=flag(Int()), required=True, help="image size (a multiple of 32)")
    p.add_argument("--batch", type=flag(Int(1, MAX_NETWORKS)), default=1)
    p.add_argument("-c", "--context", choices=("cpu", "cudnn"), default="cpu")
    p.add_argument("-d", "--device-id", default="0")
    p.add_argument("--space", default="ofa", help=f"one of {', '.join(SPACE_NAMES)} (the layers of its paths)")
    p.add_argument("--warmup", type=flag(Int(0, MAX_REPEATS)), default=3, help="untimed rounds before timing")
    p.add_argument("--repeats", type=flag(Int(1, MAX_REPEATS)), default=10,
                   help="timed rounds; the table keeps the median")
    p.add_argument("--group", type=flag(Int(1, MAX_NETWORKS)), default=32,
                   help="layers built and timed together, round robin")
    p.add_argument("--clock", choices=("auto", "wall", "process"), default="auto",
                   help="wall time, or process CPU time (auto: process on cpu, wall on cudnn)")
    p.add_argument("--validate", type=flag(Int(0, MAX_NETWORKS)), default=0, metavar="N",
                   help="also time N whole extracted networks (smallest, largest, random) and report the error")
    p.add_argument("--seed", type=flag(seed_spec()), default=0, help="seed of the validation networks")
    p.add_argument("-o", "--output", required=True, help="table file to write (JSON)")
    add_supernet_args(p)
    p.set_defaults(func=run_measure_latency)
