"""The path scorer pruning consumes: any ``score(archs, flops, bucket) -> array``, checked.

A ``PathFilter`` is accepted by duck typing (an object with a ``score(archs, flops=, bucket=)``
method, as ``path_filter.model.PathFilter``), so this package never imports NNabla. Every
score is passed the path's FLOPs (MFLOPs) and its bucket in the unpruned space's buckets;
higher = better.
"""
from typing import Callable, Optional, Sequence

import numpy as np

from ..space import Buckets
from .operations import PruningError

ScoreFn = Callable[[Sequence, np.ndarray, np.ndarray], np.ndarray]


class Scorer:
    """Wraps a scorer; ``__call__(archs, flops, bucket)`` returns float64 scores, one per arch,
    in chunks of ``batch_size``, and refuses NaN / infinite / misshaped results."""

    def __init__(self, scorer, batch_size: int = 4096):
        if isinstance(scorer, Scorer):
            scorer = scorer.inner
        self.inner = scorer
        if hasattr(scorer, "score") and callable(scorer.score):
            self._fn = lambda a, f, b: scorer.score(a, flops=f, bucket=b)
        elif callable(scorer):
            self._fn = scorer
        else:
            raise PruningError(f"scorer {scorer!r}: expected a callable score(archs, flops, bucket) or an object "
                               "with a score(archs, flops=, bucket=) method (a PathFilter)")
        self.batch_size = int(batch_size)

    @property
    def buckets(self) -> Optional[Buckets]:
        """The buckets the scorer was trained with, when it says (a PathFilter's config)."""
        cfg = getattr(self.inner, "config", None)
        b = getattr(cfg, "buckets", None)
        return b if isinstance(b, Buckets) else None

    def check_buckets(self, buckets: Buckets) -> None:
        """Refuse a filter whose bucket embedding means other FLOPs ranges than ``buckets``."""
        mine = self.buckets
        if mine is None:
            return
        tol = 1e-9 * max(abs(buckets.hi), 1.0)
        if mine.n != buckets.n or abs(mine.lo - buckets.lo) > tol or abs(mine.hi - buckets.hi) > tol:
            raise PruningError(f"the path filter was trained on buckets {mine.n} x [{mine.lo:.6g}, {mine.hi:.6g}] "
                               f"MFLOPs, the space's buckets are {buckets.n} x [{buckets.lo:.6g}, "
                               f"{buckets.hi:.6g}]: a filter of another supernet setting or input size?")

    def __call__(self, archs: Sequence, flops, bucket) -> np.ndarray:
        flops = np.asarray(flops, np.float64).reshape(-1)
        bucket = np.asarray(bucket, np.int64).reshape(-1)
        n = len(archs)
        if len(flops) != n or len(bucket) != n:
            raise ValueError(f"{n} archs, {len(flops)} FLOPs values, {len(bucket)} buckets")
        out = np.empty(n, np.float64)
        for i in range(0, n, self.batch_size):
            j = min(n, i + self.batch_size)
            s = np.asarray(self._fn(list(archs[i:j]), flops[i:j], bucket[i:j]), np.float64).reshape(-1)
            if len(s) != j - i:
                raise PruningError(f"the scorer returned {len(s)} scores for {j - i} paths")
            out[i:j] = s
        bad = ~np.isfinite(out)
        if bad.any():
            k = int(np.nonzero(bad)[0][0])
            raise PruningError(f"the scorer returned {int(bad.sum())} non-finite score(s) (NaN or inf) for "
                               f"{n} paths; first: {out[k]} for {archs[k]} (bucket {int(bucket[k])})")
        return out
