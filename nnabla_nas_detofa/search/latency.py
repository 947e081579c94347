"""Latency lookup tables: per-layer times measured on one device, summed over a path's layers.

The table (JSON, versioned) records where and how it was measured: the NNabla context (cpu /
cudnn), the device's name when known, batch size, input size, the supernet settings (channel
counts depend on them), the nnabla version, warm-up / repeat counts and the statistic kept
(the median of the repeats) and the clock (``wall``: elapsed time between device
synchronisations; ``process``: CPU time of the process, for CPU tables on shared machines, see
``nets.latency.time_round_robin``). Entries are keyed by ``space.layers.Layer.key()``, in the
style of once-for-all's tables (``bottleneck-input:24x24x64-output:12x12x128-mid:32-stride:2-shortcut:conv``);
a path's latency is the sum over ``path_layers`` (numpy only here; ``nets.latency`` measures)::

    {"format": "nnabla_nas_detofa.latency_table", "version": 1,
     "settings": {"context": "cpu", "device": "...", "batch_size": 1, "input_size": 384,
                  "supernet": {...SupernetConfig...}, "nnabla_version": "1.39.0",
                  "warmup": 3, "repeats": 10, "statistic": "median", "clock": "process", "unit": "ms"},
     "layers": {"stem_conv1-input:384x384x3-output:192x192x32": {"ms": 1.23, "mean_ms": ...,
                "std_ms": ..., "min_ms": ..., "n": 10}, ...},
     "validation": {...whole-network check, optional...}}

A table refuses settings it was not measured for (``check``) and names a layer it lacks.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np

from ..atomic import json_safe, write_json_atomic
from ..reading import read_json
from ..space.arch import Arch
from ..space.config import CONFIG_KEYS, ConfigError, SupernetConfig, check_input_size
from ..space.layers import Layer, path_layers, space_layers
from .costs import AdditiveCost, MissingLayer

FORMAT = "nnabla_nas_detofa.latency_table"
VERSION = 1
STATISTICS = ("median",)
CLOCKS = ("wall", "process")
ENTRY_KEYS = ("ms", "mean_ms", "std_ms", "min_ms", "n")


class LatencyTableError(ValueError):
    """A bad or mismatched latency table; the message names the file and the key or setting."""


def _number(v, where, lo=0.0):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= lo or v != v or v == float("inf"):
        raise LatencyTableError(f"{where}={v!r}: expected a finite number >= {lo:g}")
    return float(v)


def _int(v, where, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise LatencyTableError(f"{where}={v!r}: expected an integer >= {lo}")
    return v


@dataclass
class LatencyTable:
    layers: Dict[str, Dict[str, float]]
    context: str
    batch_size: int
    input_size: int
    supernet: SupernetConfig
    device: str = "unknown"
    nnabla_version: str = "unknown"
    warmup: int = 0
    repeats: int = 1
    statistic: str = "median"
    clock: str = "wall"
    validation: Optional[Dict] = None
    source: str = field(default="latency table", compare=False)

    # --- lookup --------------------------------------------------------------------------
    def ms(self, layer) -> float:
        """The table's time of one layer (``Layer`` or key); KeyError when absent."""
        key = layer.key() if isinstance(layer, Layer) else layer
        return self.layers[key]["ms"]

    def predict(self, arch, part: str = "detector") -> float:
        """Latency (ms) of a path: the sum of its layers' times."""
        total = 0.0
        for lay in path_layers(Arch.from_dict(arch), self.supernet, self.input_size, part):
            try:
                total += self.ms(lay)
            except KeyError:
                raise LatencyTableError(f"{self.source}: no entry for layer {lay.key()} (the table was measured "
                                        f"for another space or settings?)") from None
        return total

    def fast_predictor(self, part: str = "detector") -> AdditiveCost:
        """``predict`` tabulated per choice (for searches); a missing layer raises LatencyTableError."""
        cost = AdditiveCost(self.supernet, self.input_size, self.ms, part=part, name=self.source)

        def predict(arch):
            try:
                return cost(arch)
            except MissingLayer as err:
                raise LatencyTableError(f"{err.args[0]} (the table was measured for another space or settings?)") \
                    from None

        predict.cost = cost
        return predict

    def missing_layers(self, space) -> List[str]:
        """Keys of the layers of ``space`` the table lacks ([] = every path can be predicted)."""
        layers = space_layers(space, self.supernet, self.input_size)
        return [lay.key() for lay in layers if lay.key() not in self.layers]

    def check(self, cfg: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
              batch_size: Optional[int] = None, context: Optional[str] = None) -> None:
        """Refuse settings the table was not measured for (LatencyTableError naming the setting)."""
        if cfg is not None and cfg != self.supernet:
            diff = [f"{k} {getattr(cfg, k)!r} (table: {getattr(self.supernet, k)!r})" for k in CONFIG_KEYS
                    if getattr(cfg, k) != getattr(self.supernet, k)]
            raise LatencyTableError(f"{self.source}: measured for other supernet settings: {', '.join(diff)}")
        for name, want, have in (("input_size", input_size, self.input_size), ("batch_size", batch_size,
                                                                                self.batch_size),
                                 ("context", context, self.context)):
            if want is not None and want != have:
                raise LatencyTableError(f"{self.source}: measured with {name} {have!r}, not {want!r}")

    # --- files ---------------------------------------------------------------------------
    def to_dict(self) -> Dict:
        return json_safe({"format": FORMAT, "version": VERSION,
                          "settings": {"context": self.context, "device": self.device, "batch_size": self.batch_size,
                                       "input_size": self.input_size, "supernet": self.supernet.to_dict(),
                                       "nnabla_version": self.nnabla_version, "warmup": self.warmup,
                                       "repeats": self.repeats, "statistic": self.statistic,
                                       "clock": self.clock, "unit": "ms"},
                          "layers": {k: dict(v) for k, v in self.layers.items()},
                          **({"validation": self.validation} if self.validation is not None else {})})

    def save(self, path: str) -> None:
        write_json_atomic(path, self.to_dict(), indent=1)
        self.source = str(path)

    @classmethod
    def from_dict(cls, obj, where: str = "latency table") -> "LatencyTable":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise LatencyTableError(f"{where}: not a latency table (expected \"format\": \"{FORMAT}\")")
        if obj.get("version") != VERSION:
            raise LatencyTableError(f"{where}: version {obj.get('version')!r} not supported (expected {VERSION})")
        unknown = sorted(set(obj) - {"format", "version", "settings", "layers", "validation"})
        if unknown:
            raise LatencyTableError(f"{where}: unknown key(s) {unknown}")
        st = obj.get("settings")
        if not isinstance(st, dict):
            raise LatencyTableError(f"{where}['settings']: expected an object")
        need = ("context", "batch_size", "input_size", "supernet")
        missing = [k for k in need if k not in st]
        if missing:
            raise LatencyTableError(f"{where}['settings']: missing key(s) {missing}")
        try:
            cfg = SupernetConfig.from_dict(st["supernet"], where=f"{where}['settings']['supernet']")
            size = check_input_size(st["input_size"], where=f"{where}['settings']['input_size']")
        except ConfigError as err:
            raise LatencyTableError(str(err)) from None
        if st.get("statistic", "median") not in STATISTICS:
            raise LatencyTableError(f"{where}['settings']['statistic']={st.get('statistic')!r}: expected one of "
                                    f"{STATISTICS}")
        if st.get("clock", "wall") not in CLOCKS:
            raise LatencyTableError(f"{where}['settings']['clock']={st.get('clock')!r}: expected one of {CLOCKS}")
        if st.get("unit", "ms") != "ms":
            raise LatencyTableError(f"{where}['settings']['unit']={st.get('unit')!r}: expected 'ms'")
        if not isinstance(st["context"], str):
            raise LatencyTableError(f"{where}['settings']['context']: expected a string")
        layers = obj.get("layers")
        if not isinstance(layers, dict) or not layers:
            raise LatencyTableError(f"{where}['layers']: expected a non-empty object of layer entries")
        entries = {}
        for key, e in layers.items():
            w = f"{where}['layers'][{key!r}]"
            if not isinstance(e, dict) or "ms" not in e:
                raise LatencyTableError(f"{w}: expected an object with 'ms'")
            bad = sorted(set(e) - set(ENTRY_KEYS))
            if bad:
                raise LatencyTableError(f"{w}: unknown key(s) {bad}")
            entries[key] = {k: (_int(v, f"{w}['{k}']") if k == "n" else _number(v, f"{w}['{k}']"))
                            for k, v in e.items() if v is not None}
        val = obj.get("validation")
        if val is not None and not isinstance(val, dict):
            raise LatencyTableError(f"{where}['validation']: expected an object")
        return cls(entries, st["context"], _int(st["batch_size"], f"{where}['settings']['batch_size']"), size, cfg,
                   device=str(st.get("device", "unknown")), nnabla_version=str(st.get("nnabla_version", "unknown")),
                   warmup=_int(st.get("warmup", 0), f"{where}['settings']['warmup']", 0),
                   repeats=_int(st.get("repeats", 1), f"{where}['settings']['repeats']"),
                   statistic=st.get("statistic", "median"), clock=st.get("clock", "wall"), validation=val,
                   source=where)

    @classmethod
    def load(cls, path: str) -> "LatencyTable":
        return cls.from_dict(read_json(path, LatencyTableError, "latency table"), where=str(path))


def entries_from_times(times: Dict[str, Iterable[float]]) -> Dict[str, Dict[str, float]]:
    """Table entries from repeated times in ms: the median (the table's value), mean, std, min."""
    out = {}
    for key, ts in times.items():
        t = np.asarray(list(ts), np.float64)
        if t.size == 0 or not np.all(np.isfinite(t)):
            raise LatencyTableError(f"layer {key}: no valid time")
        out[key] = {"ms": float(np.median(t)), "mean_ms": float(t.mean()), "std_ms": float(t.std()),
                    "min_ms": float(t.min()), "n": int(t.size)}
    return out
