"""One FLOPs bucket of a space, as a search space: uniform draws from that bucket, membership of the space.

A budget's search runs inside one bucket (the path filter ranks paths of one bucket, §3.1), so
its initial population and random-search draws should come from that bucket. Drawing from the
whole space and rejecting the rest fails for the end buckets (under 1 % of uniform draws of A
land in the smallest one); a space that samples per bucket (``pruning.PrunedSpace``, also over
A with nothing pruned) draws from the bucket directly. Mutation still varies the base space's
choices (``space.space``), and every candidate is checked with ``contains`` and the constraints.
"""
import numpy as np

from ..space.arch import Arch


class BucketSpace:
    """``space`` (with ``sample_bucket(gen, b, n)`` and ``contains``) restricted for sampling to
    bucket ``bucket``; ``sample(rng)`` draws with the search's ``random.Random`` (deterministic
    by its seed), ``block`` paths at a time. ``contains``: membership to use instead of
    ``space.contains`` (over A, nothing pruned: the plain space's, ~10x cheaper per candidate;
    the search's FLOPs constraint keeps the bucket)."""

    def __init__(self, space, bucket: int, block: int = 64, contains=None):
        self.inner, self.bucket, self.block = space, int(bucket), int(block)
        self._contains = contains or space.contains
        self.space = getattr(space, "space", None)   # the base space: its choices for mutation
        base = getattr(self.space, "name", type(space).__name__)
        self.name = f"{base}/bucket{self.bucket}"
        for attr in ("coupled", "pairs"):
            if hasattr(self.space, attr):
                setattr(self, attr, getattr(self.space, attr))
        self._buffer = []

    def sample(self, rng, mode=None) -> Arch:
        if not self._buffer:
            gen = np.random.default_rng(rng.getrandbits(63))
            archs, _ = self.inner.sample_bucket(gen, self.bucket, self.block)
            self._buffer = list(archs.to_archs())[::-1]
        return self._buffer.pop()

    def contains(self, arch) -> bool:
        return self._contains(arch)
