"""Exact uniform sampling inside one FLOPs bucket of a space, by counting paths over quantised FLOPs.

The FLOPs of a path are a sum of terms: the stem (stem depth and widths), one term per active
unit slot (its input width, its stage's width, its expand ratio) and the head (last width).
Rounding every term down to a unit of ``delta`` MACs gives an integer G with
``F / delta - m < G <= F / delta`` (m terms, at most 20). A path can only land in bucket
[E_b, E_b+1) if G is in [E_b / delta - m - 1, E_b+1 / delta + 1] (one unit of margin each side
for float rounding): the set U_b of those paths is a superset of the bucket's paths T_b.

The paths form a layered graph: stem -> (stage 1: depth, width, then one expand ratio per active
slot) -> ... -> head, whose only state between stages is the width (the next stage's input
width). A forward pass counts, for every node and every G, the partial paths reaching it
(integers, exact: the counts never exceed the space size, < 2^62). Sampling goes backward: pick
the final G in U_b's range with probability count / |U_b| by an exact integer draw, then at
each step the predecessor with probability proportional to its count. That draws uniformly from
U_b (every network is one path through the graph; a dropped slot is no step, so the expand
ratios of dropped slots do not make different paths); keeping a draw iff its exact FLOPs land
in bucket b is then an exact uniform draw from T_b, at acceptance |T_b| / |U_b|. With
``delta`` = (the space's largest FLOPs) / ``resolution`` the margin is small and acceptance high
even in the sparse extreme buckets (top bucket of OFA at full width: 1.6e-5 of the space, acceptance
~0.8 here against 3e-4 for the skeleton proposal of ``pruning/uniform.py``).

Cost: forward a few hundred shifted additions of length ``resolution`` (~10-20 ms), memory
~4 x 3 x 3 x 6 x resolution int64 (7 MB at 4096); a backward batch is ~300 numpy calls
whatever its size, so this is for bucket-conditional *batches* (operation scores, thresholds,
size estimates, per-bucket path sets), while the training sampler of the pruned space uses
the cheaper joint proposal of ``pruning/uniform.py``.
"""
import random
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .arch import (BASE_DEPTHS, EXPAND_CHOICES, N_SLOTS, N_STAGES, STAGE_FIRST_SLOT, STAGE_SLOTS,
                   STEM_DEPTH_CHOICES, WIDTH_CHOICES)
from .batch import ArchArrays, FlopsTable, concat, empty_arrays
from .buckets import Buckets
from .spaces import SearchSpace

NW, NE = len(WIDTH_CHOICES), len(EXPAND_CHOICES)


def generator(rng) -> np.random.Generator:
    """A numpy Generator determined by ``rng`` (a ``random.Random``, an int seed, or a Generator):
    vectorised draws that keep the project's seeding convention (a function of the seed)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, random.Random):
        return np.random.Generator(np.random.PCG64(rng.getrandbits(128)))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.Generator(np.random.PCG64(int(rng)))
    raise TypeError(f"rng={rng!r}: expected a random.Random, an int seed or a numpy Generator")


@dataclass
class Draw:
    """Candidates of one batch: ``archs``, ``flops`` (MFLOPs), ``bucket`` (of their FLOPs),
    ``target`` (what each was proposed for: a bucket here, a target index for a joint proposal)
    and ``accepted`` (landed where proposed)."""

    archs: ArchArrays
    flops: np.ndarray
    bucket: np.ndarray
    target: np.ndarray
    accepted: np.ndarray
N_TERMS = 2 + N_SLOTS  # stem, 18 unit slots, head: the most rounded terms in one path


def _shift_add(dst: np.ndarray, src: np.ndarray, g: int) -> None:
    if g < len(dst):
        dst[g:] += src[:len(dst) - g]


def _pick(gen: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw with probability weight / row sum (integer weights, exact)."""
    cum = np.cumsum(weights, axis=1)
    tot = cum[:, -1]
    if (tot <= 0).any():
        raise AssertionError("a sampling step found no predecessor (counting tables inconsistent)")
    r = gen.integers(0, tot)
    return (cum > r[:, None]).argmax(axis=1)


class CountingSampler:
    """Counts of the paths of ``space`` per quantised FLOPs; exact uniform draws per bucket."""

    def __init__(self, space: SearchSpace, table: FlopsTable, buckets: Buckets, resolution: int = 4096,
                 delta: int = None):
        self.space, self.table, self.buckets = space, table, buckets
        top = table.macs(ArchArrays.from_archs([space.extreme(True)]))[0]
        self.delta = int(delta) if delta else max(1, int(top) // int(resolution))
        dl = self.delta
        self.g_stem, self.g_unit, self.g_head = table.stem // dl, table.unit // dl, table.head // dl
        ch = space.choices
        self.e_ok = np.zeros((N_SLOTS, NE), bool)
        for k in range(N_SLOTS):
            for v in ch[("e", k)]:
                self.e_ok[k, EXPAND_CHOICES.index(v)] = True
        self.e_first = np.array([EXPAND_CHOICES.index(ch[("e", k)][0]) for k in range(N_SLOTS)], np.int64)
        self.d0_ok = np.array([v in ch[("d", 0)] for v in STEM_DEPTH_CHOICES])
        self.w0_ok = np.array([v in ch[("w", 0)] for v in range(NW)])
        self.w1_ok = np.array([v in ch[("w", 1)] for v in range(NW)])
        # allowed (depth value, width) per stage
        self.dw_ok = np.zeros((N_STAGES, 3, NW), bool)
        for s in range(N_STAGES):
            for d, w, _ in space.stage_options(s):
                self.dw_ok[s, d, w] = True
        big = space.extreme(True)
        a = ArchArrays.from_archs([big])
        self.L = L = int(self._quantised(a)[0]) + 1
        # forward counts
        F = np.zeros((NW, L), np.int64)
        for ri, d0 in enumerate(STEM_DEPTH_CHOICES):
            for w0 in range(NW):
                for w1 in range(NW):
                    if self.d0_ok[ri] and self.w0_ok[w0] and self.w1_ok[w1]:
                        F[w1, self.g_stem[ri, w0, w1]] += 1
        self.F = [F]          # F[s]: partial paths ending stage s-1 (F[0]: after the stem), by out width
        self.H = []           # H[s][c, w, p]: partial paths through slot p of stage s
        for s in range(N_STAGES):
            base, P, k0 = BASE_DEPTHS[s], STAGE_SLOTS[s], STAGE_FIRST_SLOT[s]
            H = np.zeros((NW, NW, P, L), np.int64)
            Fn = np.zeros((NW, L), np.int64)
            for w in range(NW):
                ds = [d for d in range(3) if self.dw_ok[s, d, w]]
                if not ds:
                    continue
                last = base + max(ds) - 1
                for p in range(last + 1):
                    k = k0 + p
                    for e in range(NE):
                        if not self.e_ok[k, e]:
                            continue
                        if p == 0:   # the first unit's MACs depend on the input width c
                            for c in range(NW):
                                _shift_add(H[c, w, 0], F[c], int(self.g_unit[k, c, w, e]))
                        else:        # the others only on the stage's width: all c at once
                            g = int(self.g_unit[k, 0, w, e])
                            if g < L:
                                H[:, w, p, g:] += H[:, w, p - 1, :L - g]
                for d in ds:
                    Fn[w] += H[:, w, base + d - 1].sum(0)
            self.H.append(H)
            self.F.append(Fn)
            F = Fn
        final = np.zeros(L, np.int64)
        for w in range(NW):
            _shift_add(final, F[w], int(self.g_head[w]))
        self.final = final
        self.cum = np.cumsum(final)
        if int(self.cum[-1]) != space.size():
            raise AssertionError(f"counting tables hold {int(self.cum[-1])} paths, the space {space.size()}")

    def _quantised(self, a: ArchArrays) -> np.ndarray:
        res = (a.d[:, 0] == max(STEM_DEPTH_CHOICES)).astype(np.int64)
        g = self.g_stem[res, a.w[:, 0], a.w[:, 1]] + self.g_head[a.w[:, 1 + N_STAGES]]
        per = self.g_unit[np.arange(N_SLOTS)[None, :], a.w[:, self.table.slot_cin_col], a.w[:, self.table.slot_w_col],
                          a.e]
        return g + (per * a.active()).sum(1)

    def g_range(self, b: int) -> Tuple[int, int]:
        """Quantised-FLOPs range [lo, hi] (inclusive) holding every path of bucket ``b``."""
        edges = self.buckets.edges
        lo = 0 if b == 0 else int(np.floor(edges[b] * 1e6 / self.delta)) - N_TERMS - 1
        hi = self.L - 1 if b == self.buckets.n - 1 else int(np.floor(edges[b + 1] * 1e6 / self.delta)) + 1
        return max(lo, 0), min(hi, self.L - 1)

    def superset_size(self, b: int) -> int:
        """|U_b|: paths whose quantised FLOPs can fall in bucket ``b`` (exact count)."""
        lo, hi = self.g_range(b)
        if hi < lo:
            return 0
        return int(self.cum[hi]) - (int(self.cum[lo - 1]) if lo > 0 else 0)

    def draw(self, gen: np.random.Generator, b, n: int = None) -> Draw:
        """Independent candidates uniform over U_b; ``accepted`` marks those in bucket b. ``b`` is a
        bucket (then ``n`` candidates) or an array with one bucket per candidate."""
        rb = np.full(int(n), int(b), np.int64) if np.ndim(b) == 0 else np.asarray(b, np.int64)
        n = len(rb)
        base = np.zeros(self.buckets.n, np.int64)
        top = np.zeros(self.buckets.n, np.int64)
        for bb in np.unique(rb).tolist():
            lo, hi = self.g_range(bb)
            base[bb] = int(self.cum[lo - 1]) if lo > 0 else 0
            top[bb] = int(self.cum[hi]) if hi >= lo else base[bb]
            if top[bb] <= base[bb]:
                raise ValueError(f"bucket {bb}: no path of the space can land there")
        u = np.searchsorted(self.cum, gen.integers(base[rb], top[rb], dtype=np.int64), side="right")
        rows = np.arange(n)
        d = np.zeros((n, 1 + N_STAGES), np.int64)
        w = np.zeros((n, 2 + N_STAGES), np.int64)
        e = np.broadcast_to(self.e_first, (n, N_SLOTS)).copy()
        # head: the last stage's width
        F4 = self.F[N_STAGES]
        wt = np.stack([np.where(u - self.g_head[x] >= 0, F4[x, np.maximum(u - self.g_head[x], 0)], 0)
                       for x in range(NW)], 1)
        cur = _pick(gen, wt)
        u = u - self.g_head[cur]
        for s in reversed(range(N_STAGES)):
            base_d, P, k0 = BASE_DEPTHS[s], STAGE_SLOTS[s], STAGE_FIRST_SLOT[s]
            H = self.H[s]
            # (input width c, depth value) of the stage, given its width ``cur`` and G ``u``
            opts = [(c, dv) for c in range(NW) for dv in range(3)]
            wt = np.stack([np.where(self.dw_ok[s, dv, cur], H[c, cur, base_d + dv - 1, u], 0) for c, dv in opts], 1)
            o = np.array(opts)[_pick(gen, wt)]
            c, dv = o[:, 0], o[:, 1]
            d[:, 1 + s], w[:, 2 + s] = dv, cur
            last = base_d + dv - 1
            for p in range(P - 1, -1, -1):
                k = k0 + p
                act = p <= last
                if not act.any():
                    continue
                g = self.g_unit[k, c, cur]                                   # (n, 3)
                idx = u[:, None] - g
                ii = np.maximum(idx, 0)
                cnt = self.F[s][c[:, None], ii] if p == 0 else H[c[:, None], cur[:, None], p - 1, ii]
                wt = np.where((idx >= 0) & self.e_ok[k][None, :], cnt, 0)
                wt[~act] = np.array([1, 0, 0])
                ch = _pick(gen, wt)
                e[:, k] = np.where(act, ch, e[:, k])
                u = np.where(act, u - g[rows, ch], u)
            cur = c
        # stem: depth and first width whose term equals what is left
        w[:, 1] = cur
        opts = [(ri, w0) for ri in range(len(STEM_DEPTH_CHOICES)) for w0 in range(NW)]
        wt = np.stack([(self.d0_ok[ri] & self.w0_ok[w0] & (self.g_stem[ri, w0, cur] == u)).astype(np.int64)
                       for ri, w0 in opts], 1)
        o = np.array(opts)[_pick(gen, wt)]
        d[:, 0] = np.array(STEM_DEPTH_CHOICES)[o[:, 0]]
        w[:, 0] = o[:, 1]
        archs = ArchArrays._trusted(d, w, e)
        flops = self.table.mflops(archs)
        bk = self.buckets.indices(flops)
        return Draw(archs, flops, bk, rb, bk == rb)

    def sample(self, gen: np.random.Generator, b: int, n: int, max_draws: int, batch: int = 2048):
        """Up to ``n`` independent paths uniform over bucket ``b`` of the space, drawing at most
        ``max_draws`` candidates: (archs, flops, candidates drawn)."""
        return self.sample_buckets(gen, [b], n, max_draws, batch)[0]

    def sample_buckets(self, gen: np.random.Generator, buckets, n: int, max_draws: int, batch: int = 4096):
        """``sample`` for several buckets at once (one backward pass per round for all of them):
        a list of (archs, flops, candidates drawn), one per bucket of ``buckets``."""
        buckets = list(buckets)
        got = {b: [] for b in buckets}
        fl = {b: [] for b in buckets}
        have = {b: 0 for b in buckets}
        drawn = {b: 0 for b in buckets}
        live = [b for b in buckets if self.superset_size(b) > 0]
        while True:
            live = [b for b in live if have[b] < n and drawn[b] < max_draws]
            if not live:
                break
            per = {b: min(batch, max(16, 2 * (n - have[b])), max_draws - drawn[b]) for b in live}
            rb = np.concatenate([np.full(per[b], b, np.int64) for b in live])
            dr = self.draw(gen, rb)
            start = 0
            for b in live:
                acc = dr.accepted[start:start + per[b]]
                idx = np.nonzero(acc)[0][: n - have[b]] + start
                drawn[b] += per[b] if have[b] + len(idx) < n else int(idx[-1]) - start + 1
                got[b].append(dr.archs.take(idx))
                fl[b].append(dr.flops[idx])
                have[b] += len(idx)
                start += per[b]
        return [(concat(got[b]) if got[b] else empty_arrays(), np.concatenate(fl[b]) if fl[b] else np.zeros(0),
                 drawn[b]) for b in buckets]
