"""What a search returns: the best path, its fitness and numbers, and the run's history."""
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..atomic import json_safe, write_json_atomic
from ..space.arch import Arch


@dataclass
class SearchResult:
    """``history``: (calls, best fitness so far) after every batch of scored paths; ``trace``:
    the fitness of every call in order (``best_after(n)`` reads it); ``metrics``: the best path's
    constraint values and any extra metrics asked for (FLOPs, parameters, latency...)."""

    algorithm: str
    best_arch: Arch
    best_fitness: float
    metrics: Dict[str, float]
    calls: int
    requests: int
    seconds: float
    history: List[Tuple[int, float]]
    trace: np.ndarray
    settings: Dict = field(default_factory=dict)
    population: List[Tuple[Arch, float]] = field(default_factory=list)

    def best_after(self, n_calls: int) -> float:
        """The best fitness among the first ``n_calls`` scored paths (-inf before the first)."""
        n = min(int(n_calls), len(self.trace))
        return float(np.max(self.trace[:n])) if n > 0 else -math.inf

    def to_dict(self) -> Dict:
        return json_safe({"algorithm": self.algorithm, "best_arch": self.best_arch.to_dict(),
                          "best_fitness": self.best_fitness, "metrics": dict(self.metrics), "calls": self.calls,
                          "requests": self.requests, "seconds": self.seconds,
                          "history": [[int(c), float(b)] for c, b in self.history], "settings": self.settings})

    def save(self, path: str) -> None:
        write_json_atomic(path, self.to_dict(), indent=1)

    def __repr__(self):
        m = ", ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
        return (f"SearchResult({self.algorithm}: fitness {self.best_fitness:.6g} after {self.calls} calls, {m}, "
                f"arch {json.dumps(self.best_arch.to_dict(), separators=(',', ':'))})")


def make_result(algorithm: str, space, evaluator, feasibility, metrics: Optional[Dict[str, Callable]],
                seconds: float, history, settings: Dict, population=()) -> SearchResult:
    """The result of a search of ``space``; ``settings`` (the algorithm's own) gain the constraints
    and the space's name, described the same way for every algorithm."""
    settings = dict(settings, constraints=[c.describe() for c in feasibility.constraints],
                    space=getattr(space, "name", type(space).__name__))
    arch, value = evaluator.best()
    values = feasibility.values(arch)
    for name, fn in (metrics or {}).items():
        values[name] = float(fn(arch))
    return SearchResult(algorithm, arch, float(value), values, evaluator.calls, evaluator.requests, seconds,
                        list(history), np.asarray(evaluator.values, np.float64), settings, list(population))
