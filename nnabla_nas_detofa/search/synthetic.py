"""A fitness with a known optimum, for tests and benchmarks of the search algorithms.

``TargetFitness(target)``: fitness(a) = - sum of the weights of the decisions in which ``a``
differs from the hidden ``target`` (depths, widths, and the expand ratio of every unit the target
uses; a unit ``a`` drops counts as different). The optimum is the target alone, fitness 0; under
a FLOPs budget equal to the target's FLOPs the target is also the constrained optimum, on the
edge of the feasible set, as a budget-bound search's best path is.
"""
import random
from typing import Sequence

import numpy as np

from ..space.arch import N_SLOTS, N_STAGES, Arch


class TargetFitness:
    def __init__(self, target, seed: int = 0, low: float = 0.5, high: float = 1.5):
        self.target = Arch.from_dict(target)
        rng = random.Random(seed)
        self.wd = [rng.uniform(low, high) for _ in range(1 + N_STAGES)]
        self.ww = [rng.uniform(low, high) for _ in range(2 + N_STAGES)]
        self.we = [rng.uniform(low, high) for _ in range(N_SLOTS)]
        self.max_penalty = sum(self.wd) + sum(self.ww) + sum(self.we[k] for k in self.target.active_slots())

    def one(self, a: Arch) -> float:
        t = self.target
        v = 0.0
        for i in range(1 + N_STAGES):
            if a.d[i] != t.d[i]:
                v += self.wd[i]
        for j in range(2 + N_STAGES):
            if a.w[j] != t.w[j]:
                v += self.ww[j]
        ka, kt = a.key()[1], t.key()[1]
        for k in range(N_SLOTS):
            if kt[k] is not None and ka[k] != kt[k]:
                v += self.we[k]
        return -v

    def __call__(self, archs: Sequence) -> np.ndarray:
        return np.array([self.one(Arch.from_dict(a)) for a in archs], np.float64)
