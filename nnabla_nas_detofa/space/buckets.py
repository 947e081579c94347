"""FLOPs buckets: equal-width bins between the min and max FLOPs of a space (DetOFA §3.1)."""
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .config import SupernetConfig
from .flops import mflops
from .spaces import SearchSpace


@dataclass(frozen=True)
class Buckets:
    lo: float
    hi: float
    n: int = 5

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"number of buckets must be >= 1, got {self.n}")
        if not self.hi >= self.lo:
            raise ValueError(f"bucket range [{self.lo}, {self.hi}] is empty")

    @property
    def edges(self) -> List[float]:
        return list(np.linspace(self.lo, self.hi, self.n + 1))

    def index(self, flops: float) -> int:
        """Bucket of a FLOPs value; values outside [lo, hi] go to the nearest end bucket."""
        if self.hi == self.lo:
            return 0
        i = int((flops - self.lo) / (self.hi - self.lo) * self.n)
        return min(max(i, 0), self.n - 1)

    def indices(self, flops) -> np.ndarray:
        f = np.asarray(flops, dtype=np.float64)
        if self.hi == self.lo:
            return np.zeros(f.shape, dtype=np.int64)
        return np.clip(((f - self.lo) / (self.hi - self.lo) * self.n).astype(np.int64), 0, self.n - 1)

    def bounds(self, i: int):
        e = self.edges
        return e[i], e[i + 1]

    def to_dict(self):
        return {"lo": self.lo, "hi": self.hi, "n": self.n}


def flops_range(space: SearchSpace, cfg: SupernetConfig, input_size: int) -> Tuple[float, float]:
    """(MFLOPs of the smallest path, MFLOPs of the largest path) of ``space``: the bucket range."""
    return mflops(space.extreme(False), cfg, input_size), mflops(space.extreme(True), cfg, input_size)


def space_buckets(space: SearchSpace, cfg: SupernetConfig, input_size: int, n: int = 5) -> Buckets:
    """``n`` equal-width FLOPs buckets over ``flops_range`` (DetOFA §3.1)."""
    return Buckets(*flops_range(space, cfg, input_size), n)
