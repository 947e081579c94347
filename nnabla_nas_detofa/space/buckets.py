"""FLOPs buckets: equal-width bins between the min and max FLOPs of a space (DetOFA §3.1)."""
from dataclasses import dataclass
from typing import List

import numpy as np

from .arch import Arch
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


def space_buckets(space: SearchSpace, cfg: SupernetConfig, input_size: int, n: int = 5) -> Buckets:
    lo = mflops(space.extreme(False), cfg, input_size)
    hi = mflops(space.extreme(True), cfg, input_size)
    return Buckets(lo, hi, n)


def arch_bucket(arch: Arch, buckets: Buckets, cfg: SupernetConfig, input_size: int) -> int:
    return buckets.index(mflops(arch, cfg, input_size))
