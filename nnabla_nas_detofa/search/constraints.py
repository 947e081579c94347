"""Constraints of a search: a named value of a path and its limits (value <= limit).

FLOPs (MFLOPs, the one definition), parameters (millions, ``space.params``) and latency (ms, a
``search.latency.LatencyTable``) are built in; any ``Constraint(name, fn, limit)`` with
``fn(arch) -> float`` plugs in the same way (memory...); a constraint may also have a lower
limit (the FLOPs bucket of a budget).
:class:`Feasibility` checks a candidate against the space and every constraint and keeps count of
what rejected candidates, so a search that finds nothing can say which constraint no path met.
"""
import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

from ..space.arch import Arch
from ..space.config import SupernetConfig, check_input_size
from ..space.layers import layer_macs, layer_params
from .costs import AdditiveCost


class SearchError(ValueError):
    """A search that cannot go on (no candidate meets the constraints, bad arguments); the
    message says which constraint or argument."""


@dataclass(frozen=True)
class Constraint:
    """``low <= fn(arch) <= limit`` (``low`` -inf by default: an upper limit only)."""

    name: str
    fn: Callable[[Arch], float]
    limit: float
    unit: str = ""
    low: float = -math.inf

    def __post_init__(self):
        for what, v in (("limit", self.limit), ("lower limit", self.low)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                raise SearchError(f"constraint {self.name}: {what} {v!r} is not a number")
        if self.low > self.limit:
            raise SearchError(f"constraint {self.name}: lower limit {self.low:g} exceeds the limit {self.limit:g}")

    def value(self, arch: Arch) -> float:
        return float(self.fn(arch))

    def ok(self, arch: Arch) -> bool:
        return self.low <= self.value(arch) <= self.limit

    def describe(self) -> str:
        unit = (" " + self.unit) if self.unit else ""
        if self.low > -math.inf:
            return f"{self.low:g} <= {self.name} <= {self.limit:g}{unit}"
        return f"{self.name} <= {self.limit:g}{unit}"


def flops_constraint(max_mflops: float, cfg: SupernetConfig, input_size: int, part: str = "detector",
                     min_mflops: Optional[float] = None) -> Constraint:
    """MFLOPs (multiply-accumulates / 1e6, ``space.flops.mflops``) <= ``max_mflops`` (and >=
    ``min_mflops`` when given: e.g. the best path of one FLOPs bucket)."""
    check_input_size(input_size)
    cost = AdditiveCost(cfg, input_size, layer_macs, part=part, divide_by=1e6, name="flops")
    return Constraint("flops", cost, float(max_mflops), "MFLOPs",
                      -math.inf if min_mflops is None else float(min_mflops))


def params_constraint(max_mparams: float, cfg: SupernetConfig, part: str = "detector") -> Constraint:
    """Trainable parameters in millions (``space.params.param_count``) <= ``max_mparams``."""
    cost = AdditiveCost(cfg, 64, layer_params, part=part, divide_by=1e6, name="params")
    return Constraint("params", cost, float(max_mparams), "M")


def latency_constraint(max_ms: float, table, cfg: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                       batch_size: Optional[int] = None, context: Optional[str] = None) -> Constraint:
    """Latency (ms) predicted by a ``LatencyTable`` <= ``max_ms``. The settings given are checked
    against the table's (a table measured for another network refuses, naming the setting)."""
    table.check(cfg=cfg, input_size=input_size, batch_size=batch_size, context=context)
    return Constraint("latency", table.fast_predictor(), float(max_ms), "ms")


class Feasibility:
    """``ok(arch)``: in the space and every constraint holds. Counts rejections per reason and the
    smallest value each constraint saw, for the error of a search that finds nothing."""

    def __init__(self, space, constraints: Sequence[Constraint] = ()):
        self.space = space
        self.constraints = tuple(constraints)
        for c in self.constraints:
            if not isinstance(c, Constraint):
                raise SearchError(f"constraint {c!r}: expected a search.Constraint")
        names = [c.name for c in self.constraints]
        if len(set(names)) != len(names):
            raise SearchError(f"constraints {names}: each name may appear once")
        self.rejected: Counter = Counter()
        self.smallest: Dict[str, float] = {}
        self.checked = 0
        self._since = Counter()   # rejections before ``start()``
        self._smallest_since: Dict[str, float] = {}

    def ok(self, arch: Arch) -> bool:
        self.checked += 1
        for c in self.constraints:  # constraints first: their smallest values seen cover every candidate
            v = c.value(arch)
            if v < self.smallest.get(c.name, math.inf):
                self.smallest[c.name] = v
            if v < self._smallest_since.get(c.name, math.inf):
                self._smallest_since[c.name] = v
            if not c.low <= v <= c.limit:
                self.rejected[c.describe()] += 1
                return False
        if not self.space.contains(arch):
            self.rejected["outside the space"] += 1
            return False
        return True

    def values(self, arch: Arch) -> Dict[str, float]:
        return {c.name: c.value(arch) for c in self.constraints}

    def start(self) -> None:
        """Begin a new count for ``explain`` (each operation that may fail calls it first)."""
        self._since = Counter(self.rejected)
        self._smallest_since = {}

    def explain(self) -> str:
        """Why candidates were rejected since ``start()``, most frequent first, with the smallest
        value each constraint saw."""
        parts = []
        for reason, n in (self.rejected - self._since).most_common():
            c = next((c for c in self.constraints if c.describe() == reason), None)
            seen = self._smallest_since.get(c.name) if c is not None else None
            parts.append(f"{reason}: {n} rejected" + (f", smallest seen {seen:.6g}" if seen is not None else ""))
        return "; ".join(parts) if parts else "no candidate was rejected"
