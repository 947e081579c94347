"""Sample m paths per FLOPs bucket without enumerating the space (DetOFA §3.1, path data).

Uniform sampling almost never reaches the extreme buckets (at full width, 5,000 uniform paths put
none in the top bucket of the OFA space), and the space (~2.5e12 paths) is far too large to
enumerate. Each path is drawn in three steps:

1. *Biased start*: a target level ``t`` is drawn inside the bucket's share of [0, 1]; every decision
   then picks its choice (choices sorted by FLOPs: larger depth / width / expand ratio never
   costs fewer FLOPs) around the quantile ``t`` with Gaussian noise of random spread.
2. *Walk into the bucket*: while the path's bucket is below (above) the target, one random
   decision moves one choice up (down); moves that jump over the whole bucket are taken only
   when no other move exists.
3. *Mix inside the bucket*: random single-choice moves that keep the path in its bucket (and in
   the space) scatter the paths, so the set is not made of walk end-points only.

A path is kept when it is new in its bucket and ``accept(arch, bucket)`` (optional) holds. A
bucket may also take its own space (a sequence of spaces, one per bucket), so the pruned space
of DetOFA (choices kept per bucket) is sampled directly rather than by rejection.
"""
import random
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from .arch import BASE_DEPTHS, N_SLOTS, N_STAGES, SLOT_POS, SLOT_STAGE, Arch
from .buckets import Buckets, flops_range
from .config import SupernetConfig
from .flops import mflops
from .spaces import SearchSpace

Accept = Callable[[Arch, int], bool]
SHORT_POLICIES = ("repeat", "fewer", "raise")


class SamplingError(RuntimeError):
    """A bucket that could not be filled (no path of the space found in it)."""


@dataclass
class BucketSample:
    """Paths per bucket: ``archs[b]`` and ``flops[b]`` (MFLOPs) for bucket ``b`` of ``buckets``.
    ``repeated[b]`` counts the entries of bucket ``b`` that repeat an earlier one (only when the
    bucket held fewer distinct paths than asked and ``short='repeat'``)."""

    buckets: Buckets
    archs: List[List[Arch]]
    flops: List[List[float]]
    repeated: List[int] = field(default_factory=list)

    def records(self) -> List[Dict]:
        """``{"arch": Arch, "flops": MFLOPs, "bucket": b}`` for every path, bucket by bucket."""
        return [{"arch": a, "flops": f, "bucket": b}
                for b in range(self.buckets.n) for a, f in zip(self.archs[b], self.flops[b])]

    def all_archs(self) -> List[Arch]:
        return [a for per in self.archs for a in per]

    def __len__(self):
        return sum(len(a) for a in self.archs)


class _Genome:
    """A mutable path in a space: one index per *gene* into that gene's FLOPs-sorted choices.

    Genes: stem depth, stem widths 0/1, per stage either (depth, width) or one coupled pair,
    and the 18 expand ratios."""

    def __init__(self, space: SearchSpace):
        self.space = space
        genes: List[Tuple[str, int, Tuple]] = [("d", 0, space.choices[("d", 0)]),
                                               ("w", 0, space.choices[("w", 0)]),
                                               ("w", 1, space.choices[("w", 1)])]
        for s in range(N_STAGES):
            if space.coupled:
                genes.append(("p", s, tuple(sorted(space.pairs[s]))))
            else:
                genes.append(("d", s + 1, space.choices[("d", s + 1)]))
                genes.append(("w", s + 2, space.choices[("w", s + 2)]))
        self.first_e = len(genes)
        genes += [("e", k, space.choices[("e", k)]) for k in range(N_SLOTS)]
        self.genes = genes
        # gene index of each stage's depth (or pair) gene, to know which expand genes are active
        self.depth_gene = {}
        for g, (kind, i, _) in enumerate(genes):
            if kind == "p":
                self.depth_gene[i] = g
            elif kind == "d" and i > 0:
                self.depth_gene[i - 1] = g

    def stage_depth(self, idx: List[int], s: int) -> int:
        kind, _, ch = self.genes[self.depth_gene[s]]
        v = ch[idx[self.depth_gene[s]]]
        return BASE_DEPTHS[s] + (v[0] if kind == "p" else v)

    def movable(self, idx: List[int]) -> List[int]:
        """Genes that change the network: all but the expand ratios of dropped slots."""
        out = [g for g in range(self.first_e) if len(self.genes[g][2]) > 1]
        depth = [self.stage_depth(idx, s) for s in range(N_STAGES)]
        out += [self.first_e + k for k in range(N_SLOTS)
                if len(self.genes[self.first_e + k][2]) > 1 and SLOT_POS[k] < depth[SLOT_STAGE[k]]]
        return out

    def arch(self, idx: List[int]) -> Arch:
        d, w, e = [0] * (1 + N_STAGES), [0] * (2 + N_STAGES), [0.0] * N_SLOTS
        for (kind, i, ch), j in zip(self.genes, idx):
            v = ch[j]
            if kind == "d":
                d[i] = v
            elif kind == "w":
                w[i] = v
            elif kind == "p":
                d[i + 1], w[i + 2] = v
            else:
                e[i] = v
        return Arch(d, e, w)

    def biased(self, rng: random.Random, t: float, spread: float) -> List[int]:
        idx = []
        for _, _, ch in self.genes:
            k = len(ch)
            j = int(round(t * (k - 1) + rng.gauss(0.0, spread * (k - 1) if k > 1 else 0.0)))
            idx.append(min(max(j, 0), k - 1))
        return idx


def _as_rng(rng) -> random.Random:
    if rng is None:
        return random.Random(0)
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, int) and not isinstance(rng, bool):
        return random.Random(rng)
    raise TypeError(f"rng={rng!r}: expected a random.Random, an int seed or None")


class _BucketWalker:
    def __init__(self, space: SearchSpace, cfg: SupernetConfig, input_size: int, buckets: Buckets, b: int,
                 rng: random.Random):
        self.g = _Genome(space)
        self.cfg, self.size, self.buckets, self.b, self.rng = cfg, input_size, buckets, b, rng
        # enough single-choice steps to cross the whole space a few times over
        self.max_walk = 4 * len(self.g.genes) + 20

    def flops(self, arch: Arch) -> float:
        return mflops(arch, self.cfg, self.size)

    def bucket(self, arch: Arch) -> int:
        return self.buckets.index(self.flops(arch))

    def start(self) -> List[int]:
        n, b = self.buckets.n, self.b
        t = (b + self.rng.random()) / n
        return self.g.biased(self.rng, t, spread=self.rng.uniform(0.05, 0.5))

    def walk(self, idx: List[int]) -> Optional[List[int]]:
        """Move ``idx`` into the target bucket; None when it gets stuck."""
        g, rng, b = self.g, self.rng, self.b
        cur = self.bucket(g.arch(idx))
        for _ in range(self.max_walk):
            if cur == b:
                return idx
            step = 1 if cur < b else -1
            genes = [q for q in g.movable(idx) if 0 <= idx[q] + step < len(g.genes[q][2])]
            if not genes:
                return None
            rng.shuffle(genes)
            fallback = None
            for q in genes:
                nxt = list(idx)
                nxt[q] += step
                nb = self.bucket(g.arch(nxt))
                if (nb <= b) if step > 0 else (nb >= b):
                    idx, cur = nxt, nb
                    break
                if fallback is None:
                    fallback = (nxt, nb)
            else:
                idx, cur = fallback
        return idx if cur == b else None

    def mix(self, idx: List[int], moves: int) -> List[int]:
        """Random single-choice moves that stay inside the target bucket."""
        g, rng = self.g, self.rng
        for _ in range(moves):
            genes = g.movable(idx)
            if not genes:
                break
            q = rng.choice(genes)
            step = rng.choice((-1, 1))
            if not 0 <= idx[q] + step < len(g.genes[q][2]):
                continue
            nxt = list(idx)
            nxt[q] += step
            if self.bucket(g.arch(nxt)) == self.b:
                idx = nxt
        return idx


def sample_per_bucket(space: Union[SearchSpace, Sequence[SearchSpace]], cfg: SupernetConfig, input_size: int,
                      m: int, n_buckets: int = 5, rng=None, accept: Optional[Accept] = None,
                      buckets: Optional[Buckets] = None, short: str = "repeat", mix_moves: int = 12,
                      patience: Optional[int] = None) -> BucketSample:
    """``m`` distinct paths in each of the FLOPs buckets of ``space``.

    Args:
        space: a SearchSpace, or one SearchSpace per bucket (bucket ``b`` samples from ``space[b]``;
            ``buckets`` is then required).
        cfg, input_size: the supernet and input size the FLOPs (MFLOPs) are computed for.
        m: paths per bucket.
        n_buckets: number of equal-width buckets between the min and max FLOPs of ``space``
            (ignored when ``buckets`` is given).
        rng: ``random.Random``, an int seed or None (seed 0): the result is a function of it.
        accept: optional ``accept(arch, bucket) -> bool``; paths it rejects are not kept.
        buckets: explicit bucket edges (e.g. those of the space a filter was trained on).
        short: when a bucket holds fewer than ``m`` distinct acceptable paths (judged after
            ``patience`` draws in a row found nothing new): 'repeat' fills it up by cycling over the
            distinct ones found (with a warning), 'fewer' returns fewer, 'raise' raises
            SamplingError. A bucket where no path at all is found always raises SamplingError.
        mix_moves: random in-bucket moves applied after entering the bucket (diversity).
        patience: draws in a row without a new path before a bucket counts as exhausted
            (default ``100 + 5 * m``).
    """
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m={m!r}: expected a positive integer")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short={short!r}: expected one of {SHORT_POLICIES}")
    rng = _as_rng(rng)
    if isinstance(space, SearchSpace):
        if buckets is None:
            lo, hi = flops_range(space, cfg, input_size)
            buckets = Buckets(lo, hi, n_buckets)
        spaces = [space] * buckets.n
    else:
        spaces = list(space)
        if buckets is None:
            raise ValueError("one space per bucket needs explicit `buckets`")
        if len(spaces) != buckets.n or not all(isinstance(s, SearchSpace) for s in spaces):
            raise ValueError(f"expected {buckets.n} SearchSpace objects (one per bucket), got {len(spaces)}")
    patience = 100 + 5 * m if patience is None else int(patience)

    out_archs, out_flops, repeated = [], [], []
    for b in range(buckets.n):
        lo_b, hi_b = buckets.bounds(b)
        slo, shi = flops_range(spaces[b], cfg, input_size)
        if buckets.index(shi) < b or buckets.index(slo) > b:
            raise SamplingError(f"bucket {b} [{lo_b:.3f}, {hi_b:.3f}) MFLOPs: the space spans "
                                f"[{slo:.3f}, {shi:.3f}] MFLOPs and has no path there")
        walker = _BucketWalker(spaces[b], cfg, input_size, buckets, b, rng)
        found: Dict[Arch, float] = {}
        misses = 0
        while len(found) < m and misses < patience:
            idx = walker.walk(walker.start())
            new = None
            if idx is not None:
                idx = walker.mix(idx, mix_moves)
                # a few extra in-bucket moves when the end point is taken or rejected
                for _ in range(4):
                    a = walker.g.arch(idx)
                    if a not in found and (accept is None or accept(a, b)):
                        new = a
                        break
                    idx = walker.mix(idx, 3)
            if new is None:
                misses += 1
                continue
            misses = 0
            found[new] = walker.flops(new)
        archs, flops = list(found), list(found.values())
        n_rep = 0
        if len(archs) < m:
            if not archs:
                raise SamplingError(f"bucket {b} [{lo_b:.3f}, {hi_b:.3f}) MFLOPs: no acceptable path found "
                                    f"in {patience} draws")
            msg = (f"bucket {b} [{lo_b:.3f}, {hi_b:.3f}) MFLOPs: only {len(archs)} distinct acceptable "
                   f"path(s) found, {m} asked")
            if short == "raise":
                raise SamplingError(msg)
            if short == "repeat":
                n_rep = m - len(archs)
                archs = [archs[i % len(archs)] for i in range(m)]
                flops = [flops[i % len(flops)] for i in range(m)]
                msg += f"; repeating {n_rep}"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        out_archs.append(archs)
        out_flops.append(flops)
        repeated.append(n_rep)
    return BucketSample(buckets, out_archs, out_flops, repeated)

