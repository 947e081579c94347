"""Measuring latency tables with NNabla (``search.latency`` holds the format and the lookup).

Every distinct layer of a space (``space.layers.space_layers``) is built from the same blocks
the networks are made of (``nets.blocks``), in inference mode with random weights, and its
forward pass is timed on the current default context: ``warmup`` untimed rounds, then
``repeats`` timed rounds over a group of layers (round robin, each run between device
synchronisations); the table keeps the median (a loaded machine spikes: the median ignores
short bursts; the entry keeps mean, std and min too).

``validate_table`` times whole extracted networks (``nets.static.StaticDetector``) the same way
and reports how far the table's sum over layers is from them (relative error, mean and max).
"""
import math
import platform
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence

import nnabla as nn
import nnabla.functions as F
import numpy as np
from nnabla.ext_utils import import_extension_module

from ..search.latency import LatencyTable, entries_from_times
from ..space import Arch, SupernetConfig, check_input_size
from ..space.layers import Layer, path_layers, space_layers
from .blocks import Bottleneck, ConvBN, DeconvBN, Head
from .detector import HEATMAP_BIAS, IMAGE_MEAN, IMAGE_STD
from .static import StaticDetector


def synchronizer(ctx=None) -> Callable[[], None]:
    """A function that waits for the device of ``ctx`` (default: nnabla's default context)."""
    ctx = ctx or nn.get_current_context()
    backend = ctx.backend[0].split(":")[0] if ctx.backend else "cpu"
    ext = import_extension_module(backend)
    device_id = str(getattr(ctx, "device_id", "0") or "0")

    def sync():
        ext.synchronize(device_id=device_id)

    return sync


def device_name(context: str, device_id: str = "0") -> str:
    """The CPU model (cpu) or GPU name (cuda / cudnn, through nvidia-smi), 'unknown' when not found."""
    if context == "cpu":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine() or "unknown"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", str(device_id)],
                             capture_output=True, text=True, timeout=10)
        name = out.stdout.strip().splitlines()
        return name[0] if out.returncode == 0 and name else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# --- one layer as a graph --------------------------------------------------------------------
def _normalise(x):
    mean = nn.Variable.from_numpy_array(np.array(IMAGE_MEAN, np.float32).reshape(1, 3, 1, 1))
    std = nn.Variable.from_numpy_array(np.array(IMAGE_STD, np.float32).reshape(1, 3, 1, 1))
    return (x - mean) / std


def layer_graph(layer: Layer, cfg: SupernetConfig, batch_size: int):
    """(input variable, output variable, modules) of ``layer`` in inference mode: the operations
    the static network runs for it (``space.layers`` says which belong to which layer)."""
    bn = dict(bn_decay=cfg.bn_decay, bn_eps=cfg.bn_eps)
    stem = dict(bn, relu6=cfg.stem_activation == "relu6")
    x = nn.Variable((batch_size, layer.cin, layer.size, layer.size))
    k = layer.kind
    if k == "stem_conv1":
        mods = [ConvBN(3, layer.cout, 3, stride=2, **stem)]
        fn = lambda v: mods[0](_normalise(v), out_channels=layer.cout)  # noqa: E731
    elif k == "stem_res":
        mods = [ConvBN(layer.cin, layer.cout, 3, **stem)]
        fn = lambda v: mods[0](v, out_channels=layer.cout) + v  # noqa: E731
    elif k == "stem_conv3":
        mods = [ConvBN(layer.cin, layer.cout, 3, **stem)]
        fn = lambda v: F.max_pooling(mods[0](v, out_channels=layer.cout), (3, 3), (2, 2), pad=(1, 1))  # noqa: E731
    elif k == "bottleneck":
        mods = [Bottleneck(layer.cin, layer.mid, layer.cout, layer.stride, downsample=layer.shortcut, **bn)]
        fn = lambda v: mods[0](v, mid=layer.mid, out=layer.cout)  # noqa: E731
    elif k == "deconv":
        mods = [DeconvBN(layer.cin, layer.cout, **bn)]
        fn = lambda v: mods[0](v)  # noqa: E731
    elif k == "heads":
        mods = [Head(layer.cin, layer.mid, layer.cout, bias_init=HEATMAP_BIAS, small_init=False),
                Head(layer.cin, layer.mid, 2), Head(layer.cin, layer.mid, 2)]
        fn = lambda v: F.sink(*[m(v) for m in mods])  # noqa: E731
    else:
        raise ValueError(f"unknown layer kind {k!r}")
    for m in mods:
        m.apply(training=False)
    with nn.no_grad():
        y = fn(x)
    return x, y, mods


CLOCKS = ("wall", "process")


def default_clock(context: str) -> str:
    """'process' on cpu, 'wall' on a GPU (see ``time_round_robin``)."""
    return "process" if context == "cpu" else "wall"


def time_round_robin(outputs: Sequence, warmup: int, repeats: int, sync: Callable[[], None],
                     clock: str = "wall") -> List[List[float]]:
    """Times (ms) of each graph of ``outputs`` (inputs already set): ``warmup`` + ``repeats``
    rounds, each running every graph once, in turn, between device synchronisations. A layer
    then runs after other layers, as in a network, with their weights and activations in the
    caches, not its own: timed alone in a loop, the layers of a 1/16-width network at 64 px
    summed to 60-70 % of the whole network's CPU time; round robin, to about 90 %. Load that comes
    and goes also falls on every graph alike.

    ``clock='wall'``: elapsed time (the latency on a GPU, or on a CPU nothing else uses).
    ``clock='process'``: CPU time of this process. NNabla's CPU kernels run on one thread, so on
    an idle core it equals the wall time, and on a shared machine it leaves out the time other
    processes hold the core (measured here, 2 cores at load 8: a 20 ms forward pass took 3-5x its
    CPU time in wall time, while sub-millisecond layers mostly ran unpreempted, so wall-clock
    layer sums under-predicted whole networks by 65 %)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock={clock!r}: expected one of {CLOCKS}")
    now = time.perf_counter if clock == "wall" else time.process_time
    out = [[] for _ in outputs]
    for r in range(warmup + repeats):
        for i, y in enumerate(outputs):
            sync()
            t = now()
            y.forward(clear_buffer=True)
            sync()
            if r >= warmup:
                out[i].append((now() - t) * 1e3)
    return out


def _sink(outputs):
    return F.sink(*outputs) if isinstance(outputs, (tuple, list)) else outputs


def network_graph(arch, cfg: SupernetConfig, input_size: int, batch_size: int):
    """(input, output sink, network) of the extracted static network of ``arch``, inference mode."""
    net = StaticDetector(cfg, arch)
    net.apply(training=False)
    x = nn.Variable((batch_size, 3, input_size, input_size))
    with nn.no_grad():
        y = _sink(net(x))
    return x, y, net


# --- tables ----------------------------------------------------------------------------------
def measure_latency_table(space, cfg: SupernetConfig, input_size: int, batch_size: int = 1, context: str = "cpu",
                          device_id: str = "0", warmup: int = 3, repeats: int = 10, clock: Optional[str] = None,
                          group: int = 32,
                          progress: Optional[Callable[[int, int, str, float], None]] = None) -> LatencyTable:
    """Time every distinct layer of ``space`` on nnabla's current default context (set it first,
    e.g. ``runners.context.make_context``); ``context`` is the name recorded in the table;
    ``clock``: see ``time_round_robin`` (default ``default_clock(context)``). Layers are timed
    ``group`` at a time, round robin (``time_round_robin``)."""
    clock = clock or default_clock(context)
    check_input_size(input_size)
    if warmup < 0 or repeats < 1 or batch_size < 1:
        raise ValueError(f"warmup={warmup}, repeats={repeats}, batch_size={batch_size}: expected warmup >= 0, "
                         f"repeats >= 1, batch_size >= 1")
    if group < 1:
        raise ValueError(f"group={group}: expected >= 1")
    sync = synchronizer()
    layers = space_layers(space, cfg, input_size)
    times: Dict[str, List[float]] = {}
    done = 0
    for start in range(0, len(layers), group):
        chunk = layers[start:start + group]
        graphs = [layer_graph(lay, cfg, batch_size)[:2] for lay in chunk]
        for i, (x, _) in enumerate(graphs):
            x.d = np.random.RandomState(start + i).uniform(0, 255, x.shape).astype(np.float32)
        for lay, t in zip(chunk, time_round_robin([y for _, y in graphs], warmup, repeats, sync, clock)):
            times[lay.key()] = t
            done += 1
            if progress is not None:
                progress(done, len(layers), lay.key(), float(np.median(t)))
        del graphs
    return LatencyTable(entries_from_times(times), context, batch_size, input_size, cfg,
                        device=device_name(context, device_id), nnabla_version=nn.__version__, warmup=warmup,
                        repeats=repeats, clock=clock)


def validate_table(table: LatencyTable, archs: Sequence, warmup: Optional[int] = None,
                   repeats: Optional[int] = None, group: int = 8, paired: bool = True,
                   progress: Optional[Callable[[int, int, float, float], None]] = None) -> Dict:
    """Time whole networks of ``archs`` (``group`` at a time, round robin as the layers) and compare
    with the table's prediction (median times; the table's clock, warm-up and repeat counts
    unless given). Relative error = (predicted - measured) / measured per network; the result has
    the mean and max of its absolute value, and one row per network (``measured_spread``: the
    interquartile range / median of its repeats).

    ``paired``: also time every layer of those networks in the same rounds as the networks and
    report the error of those sums (``paired_*``): the error of the decomposition itself, apart
    from drift between the table's measurement and now (a shared machine's load changes)."""
    warmup = table.warmup if warmup is None else warmup
    repeats = table.repeats if repeats is None else repeats
    archs = [Arch.from_dict(a) for a in archs]
    rows = []
    for start in range(0, len(archs), group):
        chunk = archs[start:start + group]
        graphs = [network_graph(a, table.supernet, table.input_size, table.batch_size)[:2] for a in chunk]
        layers = list(dict.fromkeys(lay for a in chunk for lay in path_layers(a, table.supernet, table.input_size)))
        if paired:
            graphs += [layer_graph(lay, table.supernet, table.batch_size)[:2] for lay in layers]
        for i, (x, _) in enumerate(graphs):
            x.d = np.random.RandomState(start + i).uniform(0, 255, x.shape).astype(np.float32)
        timed = time_round_robin([y for _, y in graphs], warmup, repeats, synchronizer(), table.clock)
        del graphs
        now = {lay: float(np.median(ts)) for lay, ts in zip(layers, timed[len(chunk):])}
        for a, ts in zip(chunk, timed):
            measured, predicted = float(np.median(ts)), table.predict(a)
            row = {"arch": a.to_dict(), "measured_ms": measured, "predicted_ms": predicted,
                   "relative_error": (predicted - measured) / measured,
                   "measured_spread": float((np.percentile(ts, 75) - np.percentile(ts, 25)) / measured)}
            if paired:
                p = sum(now[lay] for lay in path_layers(a, table.supernet, table.input_size))
                row.update(paired_predicted_ms=p, paired_relative_error=(p - measured) / measured)
            rows.append(row)
            if progress is not None:
                progress(len(rows), len(archs), measured, predicted)
    out = {"networks": len(rows), "warmup": warmup, "repeats": repeats, "clock": table.clock}
    for prefix in ("", "paired_") if paired else ("",):
        e = np.array([r[prefix + "relative_error"] for r in rows], np.float64)
        out.update({f"{prefix}mean_abs_relative_error": float(np.abs(e).mean()) if e.size else math.nan,
                    f"{prefix}max_abs_relative_error": float(np.abs(e).max()) if e.size else math.nan,
                    f"{prefix}mean_relative_error": float(e.mean()) if e.size else math.nan})
    out["rows"] = rows
    return out


def layer_spread(table: LatencyTable) -> float:
    """Median over layers of (std / median) of the repeats: how noisy the timing was."""
    v = [e["std_ms"] / e["ms"] for e in table.layers.values() if e.get("std_ms") is not None and e["ms"] > 0]
    return float(np.median(v)) if v else math.nan
