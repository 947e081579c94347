"""Exact uniform sampling over a union of "paths of a space S_j that land in bucket b_j".

A *target* is a pair (space S, bucket b): T = {x in S : bucket(x) = b}. The pruned space is the
union of its targets (K_b, b), one per bucket. Rejection from S (draw uniformly, keep iff the
path lands in b) is exact; this module makes it cheap and vectorised:

* A *skeleton* is everything a path chooses but its expand ratios: stem depth and widths, each
  stage's (depth, width). Given its skeleton, a path's FLOPs lie between those with every slot
  at its smallest allowed ratio and at its largest (MACs grow with the ratio), computed for all
  skeletons at once from ``FlopsTable.stage_bounds`` (2 x 3 x 3 x 9^4 = 118,098 for OFA).
* The proposal P of a target keeps the skeletons whose FLOPs range meets bucket b (the others
  have no path in T), weighted by their number of distinct networks (the product of the allowed
  ratios of their *active* slots; dropped slots make no choice). A draw picks a skeleton row with
  probability weight / |P| by an exact integer draw, then each ratio uniformly: uniform over the
  networks of P, a superset of T.
* Targets are sampled jointly by one categorical over all their rows: target j comes up with
  probability |P_j| / sum |P|. Accepting iff the path lands in its own target's bucket gives
  P(x) = 1 / sum |P| for every x of the union of the T_j (disjoint, since their buckets differ)
  and 0 elsewhere: exactly uniform, at acceptance |union T_j| / sum |P_j|. (Picking the bucket
  with probability |T_b| / |T| and then rejecting inside it costs the same number of draws in
  expectation, sum |P_b| / |T|, and needs the |T_b|; this needs nothing estimated.)

Draws take a ``numpy.random.Generator``; ``space.bucket_uniform.generator(rng)`` derives one from
a ``random.Random`` so that callers keep the project's seeding convention.
"""
import itertools
import json
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..space import EXPAND_CHOICES, N_SLOTS, N_STAGES, STEM_DEPTH_CHOICES, Buckets, SearchSpace
from ..space.batch import ArchArrays, FlopsTable
from ..space.bucket_uniform import Draw


def space_key(space: SearchSpace) -> str:
    return json.dumps([space.coupled, sorted((f"{k}{i}", list(v)) for (k, i), v in space.choices.items()),
                       sorted((s, [list(p) for p in ps]) for s, ps in space.pairs.items())])


class Skeletons:
    """Every skeleton of a space with its network count and the range of buckets it can reach."""

    def __init__(self, space: SearchSpace, table: FlopsTable, buckets: Buckets):
        ch = space.choices
        stem = list(itertools.product(ch[("d", 0)], ch[("w", 0)], ch[("w", 1)]))
        opts = [space.stage_options(s) for s in range(N_STAGES)]
        idx = np.indices([len(stem)] + [len(o) for o in opts]).reshape(1 + N_STAGES, -1)
        st = np.array(stem, np.int64)[idx[0]]
        d = np.zeros((idx.shape[1], 1 + N_STAGES), np.int64)
        w = np.zeros((idx.shape[1], 2 + N_STAGES), np.int64)
        d[:, 0], w[:, 0], w[:, 1] = st[:, 0], st[:, 1], st[:, 2]
        count = np.ones(idx.shape[1], np.int64)
        for s in range(N_STAGES):
            o = np.array(opts[s], np.int64)[idx[1 + s]]
            d[:, 1 + s], w[:, 2 + s] = o[:, 0], o[:, 1]
            count *= o[:, 2]
        self.e_choices = [np.array([EXPAND_CHOICES.index(v) for v in ch[("e", k)]], np.int64) for k in range(N_SLOTS)]
        emin = np.array([c.min() for c in self.e_choices])
        emax = np.array([c.max() for c in self.e_choices])
        bounds = table.stage_bounds(emin, emax)
        res = (d[:, 0] == max(STEM_DEPTH_CHOICES)).astype(np.int64)
        lo = table.stem[res, w[:, 0], w[:, 1]] + table.head[w[:, 1 + N_STAGES]]
        hi = lo.copy()
        for s in range(N_STAGES):
            cin = w[:, 1] if s == 0 else w[:, 1 + s]
            t = bounds[s][cin, d[:, 1 + s], w[:, 2 + s]]
            lo += t[:, 0]
            hi += t[:, 1]
        self.d, self.w, self.count = d.astype(np.int8), w.astype(np.int8), count
        self.b_lo, self.b_hi = buckets.indices(lo / 1e6), buckets.indices(hi / 1e6)
        self.size = int(space.size())
        if int(count.sum()) != self.size:
            raise AssertionError(f"skeleton counts add up to {int(count.sum())}, the space has {self.size}")

    def rows(self, bucket: int) -> np.ndarray:
        """Skeletons that may have a path in ``bucket`` (all others certainly have none)."""
        return np.nonzero((self.b_lo <= bucket) & (self.b_hi >= bucket))[0]


class Proposal:
    """Exact uniform sampler over the union of targets ``[(space, bucket), ...]`` (module doc).
    ``cache`` maps spaces to their skeletons, to share them between proposals."""

    def __init__(self, targets: Sequence[Tuple[SearchSpace, int]], table: FlopsTable, buckets: Buckets,
                 cache: Optional[dict] = None):
        self.table, self.buckets = table, buckets
        self.targets = list(targets)
        cache = {} if cache is None else cache
        d, w, cnt, tgt = [], [], [], []
        self.e_tab = np.zeros((len(self.targets), N_SLOTS, len(EXPAND_CHOICES)), np.int64)
        self.e_n = np.zeros((len(self.targets), N_SLOTS), np.int64)
        self.target_bucket = np.array([b for _, b in self.targets], np.int64)
        self.space_size: List[int] = []
        self.proposal_size: List[int] = []
        for j, (space, b) in enumerate(self.targets):
            if not 0 <= b < buckets.n:
                raise ValueError(f"bucket {b} outside 0..{buckets.n - 1}")
            key = space_key(space)
            if key not in cache:
                cache[key] = Skeletons(space, table, buckets)
            sk = cache[key]
            rows = sk.rows(b)
            d.append(sk.d[rows])
            w.append(sk.w[rows])
            cnt.append(sk.count[rows])
            tgt.append(np.full(len(rows), j, np.int16))
            for k in range(N_SLOTS):
                c = sk.e_choices[k]
                self.e_tab[j, k, :len(c)] = c
                self.e_n[j, k] = len(c)
            self.space_size.append(sk.size)
            self.proposal_size.append(int(sk.count[rows].sum()))
        self.row_d, self.row_w = np.concatenate(d), np.concatenate(w)
        self.row_t = np.concatenate(tgt)
        self.cum = np.cumsum(np.concatenate(cnt))
        ends = np.cumsum([0] + [len(x) for x in cnt])
        self.row_range = [(int(ends[j]), int(ends[j + 1])) for j in range(len(self.targets))]
        self.total = int(self.cum[-1]) if len(self.cum) else 0
        if self.total >= 2 ** 62:
            raise ValueError("proposal too large for exact int64 draws")
        self._slots = np.arange(N_SLOTS)[None, :]

    def _weight_range(self, j: Optional[int]) -> Tuple[int, int]:
        if j is None:
            return 0, self.total
        a, b = self.row_range[j]
        lo = int(self.cum[a - 1]) if a > 0 else 0
        return lo, int(self.cum[b - 1]) if b > a else lo

    def empty(self, j: Optional[int] = None) -> bool:
        lo, hi = self._weight_range(j)
        return hi <= lo

    def draw(self, gen: np.random.Generator, n: int, target: Optional[int] = None) -> Draw:
        """``n`` independent candidates, uniform over the proposal of ``target`` (or of all
        targets jointly, each with probability |P_j| / sum |P|)."""
        lo, hi = self._weight_range(target)
        if hi <= lo:
            raise ValueError(f"target {target}: the proposal holds no path")
        r = gen.integers(lo, hi, size=n, dtype=np.int64)
        row = np.searchsorted(self.cum, r, side="right")
        t = self.row_t[row].astype(np.int64)
        # each slot: uniform over its 1, 2 or 3 allowed ratios, exactly (6 is a multiple of each)
        pick = gen.integers(0, 6, size=(n, N_SLOTS)) % self.e_n[t]
        e = self.e_tab[t[:, None], self._slots, pick]
        archs = ArchArrays._trusted(self.row_d[row].astype(np.int64), self.row_w[row].astype(np.int64), e)
        flops = self.table.mflops(archs)
        b = self.buckets.indices(flops)
        return Draw(archs, flops, b, t, b == self.target_bucket[t])
