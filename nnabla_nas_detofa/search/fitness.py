"""Fitness: any ``fitness(list_of_archs) -> array`` (higher = better), counted and memoised.

:class:`Evaluator` wraps the user's callable: archs already scored are not scored again; each
batch of new archs goes to the callable in one call (the numpy path filter is far faster
batched); ``calls`` counts the archs actually scored (the cost a search is compared by: "best
fitness vs number of calls"), with an optional budget ``max_calls``.

``path_filter_fitness(filter)`` adapts a ``path_filter.PathFilter`` (or anything with its
``score(archs, flops=...)``): each path is scored in the bucket of its own FLOPs, with the
filter's own buckets. A loss to minimise (a user's predictor, or the true validation loss of
each path for small studies) is a fitness once negated: ``lambda archs: -np.asarray(loss(archs))``.
"""
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..space.arch import Arch
from ..space.config import SupernetConfig, check_input_size
from ..space.layers import layer_macs
from .constraints import SearchError
from .costs import AdditiveCost

Fitness = Callable[[List[Arch]], Sequence[float]]


class Evaluator:
    """Memoised, counted fitness. ``evaluator(archs)`` -> np.ndarray of fitness, in order."""

    def __init__(self, fitness: Fitness, max_calls: Optional[int] = None, memo: bool = True,
                 name: str = "fitness"):
        if not callable(fitness):
            raise SearchError(f"{name}: expected a callable fitness(list_of_archs) -> array, "
                              f"got {type(fitness).__name__}")
        if max_calls is not None and (isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 1):
            raise SearchError(f"max_calls={max_calls!r}: expected a positive integer or None")
        self.fitness, self.max_calls, self.memo, self.name = fitness, max_calls, memo, name
        self.cache: Dict[Arch, float] = {}
        self.archs: List[Arch] = []      # every arch scored, in call order
        self.values: List[float] = []    # its fitness
        self.requests = 0                # archs asked for, memo hits included
        self.batches = 0
        self.best_value = -math.inf      # the best fitness scored so far

    @property
    def calls(self) -> int:
        return len(self.values)

    @property
    def remaining(self) -> float:
        return math.inf if self.max_calls is None else self.max_calls - self.calls

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def new_count(self, archs: Sequence[Arch]) -> int:
        """How many calls scoring ``archs`` would cost."""
        if not self.memo:
            return len(archs)
        return len({a for a in archs if a not in self.cache})

    def within_budget(self, archs: Sequence[Arch]) -> List[Arch]:
        """The longest prefix of ``archs`` whose new archs fit in the remaining budget."""
        archs = list(archs)
        if self.max_calls is None:
            return archs
        left = self.remaining
        if not self.memo:
            return archs[:max(0, int(left))]
        seen = set()
        for i, a in enumerate(archs):
            if a not in self.cache and a not in seen:
                if len(seen) == left:
                    return archs[:i]
                seen.add(a)
        return archs

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = [Arch.from_dict(a) for a in archs]
        self.requests += len(archs)
        if self.memo:
            todo, seen = [], set()
            for a in archs:
                if a not in self.cache and a not in seen:
                    seen.add(a)
                    todo.append(a)
        else:
            todo = archs
        if len(todo) > self.remaining:
            raise SearchError(f"{self.name}: {len(todo)} new archs exceed the remaining budget of "
                              f"{self.remaining} calls (max_calls={self.max_calls})")
        fresh = self._score(todo) if todo else np.zeros(0)
        self.archs.extend(todo)
        self.values.extend(float(v) for v in fresh)
        if len(fresh):
            self.best_value = max(self.best_value, float(np.max(fresh)))
        if not self.memo:
            return fresh
        self.cache.update(zip(todo, (float(v) for v in fresh)))
        return np.array([self.cache[a] for a in archs], np.float64)

    def _score(self, archs: List[Arch]) -> np.ndarray:
        self.batches += 1
        v = np.asarray(self.fitness(list(archs)), dtype=np.float64).reshape(-1)
        if v.shape != (len(archs),):
            raise SearchError(f"{self.name}: returned {v.size} values for {len(archs)} archs")
        if not np.all(np.isfinite(v)):
            bad = int(np.flatnonzero(~np.isfinite(v))[0])
            raise SearchError(f"{self.name}: returned a non-finite value ({v[bad]}) for {archs[bad]}")
        return v

    # --- results -------------------------------------------------------------------------
    def best(self) -> Tuple[Optional[Arch], float]:
        if not self.values:
            return None, -math.inf
        i = int(np.argmax(self.values))  # the first arch that reached the best value
        return self.archs[i], self.values[i]

    def best_so_far(self) -> np.ndarray:
        """``best_so_far()[n - 1]`` = the best fitness among the first n calls."""
        return np.maximum.accumulate(np.asarray(self.values, np.float64)) if self.values else np.zeros(0)


def path_filter_fitness(path_filter, cfg: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                        bucket: Optional[int] = None, batch_size: int = 256) -> Fitness:
    """Fitness = the path filter's logit (``path_filter.logits``, the score before its sigmoid: the
    same ranking, but confident scores do not all round to 1.0 and tie; a scorer with only
    ``score`` is used as it is) with ``flops=FLOPs``: every path in the bucket of its own
    FLOPs (the filter's buckets; a filter without budget conditioning ignores them), or every
    path in ``bucket`` when given (e.g. the bucket of the budget). FLOPs come from ``cfg`` and
    ``input_size`` when given, else from the filter's own supernet settings.

    The FLOPs-bounded loss only ranks paths of the same bucket, so scores of different buckets
    need not be comparable: to find the best path of one budget, search that bucket
    (``flops_constraint(hi, ..., min_mflops=lo)`` with the bucket's edges)."""
    if not hasattr(path_filter, "score"):
        raise SearchError(f"path filter {type(path_filter).__name__}: expected an object with score(archs, flops=...)")
    conf = getattr(path_filter, "config", None)
    own_cfg, own_size = getattr(conf, "supernet", None), getattr(conf, "input_size", None)
    if own_cfg is not None and cfg is not None and cfg != own_cfg:
        raise SearchError(f"path filter fitness: the filter was trained for supernet settings {own_cfg}, not {cfg}")
    if own_size is not None and input_size is not None and input_size != own_size:
        raise SearchError(f"path filter fitness: the filter was trained at input size {own_size}, not {input_size}")
    cfg, input_size = cfg or own_cfg, input_size or own_size
    if cfg is None or input_size is None:
        raise SearchError("path filter fitness: the filter does not record its supernet settings and input size; "
                          "give cfg and input_size")
    check_input_size(input_size)
    flops = AdditiveCost(cfg, input_size, layer_macs, divide_by=1e6, name="flops")

    if bucket is not None:
        n = getattr(getattr(conf, "buckets", None), "n", None)
        if isinstance(bucket, bool) or not isinstance(bucket, int) or bucket < 0 or (n is not None and bucket >= n):
            raise SearchError(f"path filter fitness: bucket={bucket!r} is not a bucket index of the filter "
                              f"(0..{'?' if n is None else n - 1})")

    rank = path_filter.logits if hasattr(path_filter, "logits") else path_filter.score
    if bucket is not None:
        def fitness(archs):
            return rank(archs, bucket=[bucket] * len(archs), batch_size=batch_size)
    else:
        def fitness(archs):
            return rank(archs, flops=[flops(a) for a in archs], batch_size=batch_size)

    fitness.path_filter = path_filter
    return fitness
