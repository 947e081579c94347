"""Small enumerable spaces and known scorers shared by the pruning tests."""
import functools
import math

import numpy as np
from nnabla_nas_detofa.space import EXPAND_CHOICES, SupernetConfig, get_space, mflops, space_buckets

TINY = SupernetConfig(width_mult=0.125, divisor=1)
SIZE = 64


def small_space(coupled=False):
    """5,120 paths (coupled: fewer): few free decisions, optional slots included (e3 is active only
    at stage-1 depth 2, e13 never: stage 3 stops at depth 1)."""
    base = get_space("compofa" if coupled else "ofa")
    keep = {("w", 0): [2], ("e", 0): [0.2, 0.35], ("e", 3): list(EXPAND_CHOICES), ("e", 9): [0.2, 0.35],
            ("e", 13): [0.25, 0.35], ("e", 15): [0.2, 0.35]}
    if coupled:
        keep.update({("d", 3): [0, 1], ("w", 4): [0, 1], ("d", 4): [2], ("w", 5): [2]})
    else:
        keep.update({("w", 1): [1, 2], ("w", 2): [0, 2], ("d", 2): [0, 2], ("w", 3): [1], ("d", 3): [0, 1],
                     ("w", 4): [0, 2], ("d", 4): [2], ("w", 5): [1, 2]})
    for k in range(18):
        keep.setdefault(("e", k), [0.25])
    return base.restrict(keep, name="small")


@functools.lru_cache(maxsize=None)
def enumerated(coupled=False):
    """(space, archs, flops, buckets) of ``small_space(coupled)``, computed once per process."""
    sp = small_space(coupled)
    return (sp,) + enumerate_space(sp)


def enumerate_space(space, cfg=TINY, size=SIZE, n_buckets=5):
    """(archs, flops, buckets) of every path, by brute force (FLOPs by the vectorised count, equal
    to mflops bit for bit: test_pruning_space_ext; spot-checked here against mflops)."""
    from nnabla_nas_detofa.space.batch import ArchArrays, FlopsTable
    archs = list(space.iter_paths())
    flops = FlopsTable(cfg, size).mflops(ArchArrays.from_archs(archs))
    for i in range(0, len(archs), max(1, len(archs) // 20)):
        assert flops[i] == mflops(archs[i], cfg, size)
    b = space_buckets(space, cfg, size, n_buckets).indices(flops)
    return archs, flops, b


class KnownScorer:
    """score = sum of fixed per-(decision, choice) effects + a bucket x last-width term; counts calls."""

    def __init__(self, seed=0):
        rng = np.random.RandomState(seed)
        self.d = rng.randn(5, 3)
        self.w = rng.randn(6, 3)
        self.e = rng.randn(18, 3)
        self.bw = rng.randn(5, 3)
        self.calls = 0

    def one(self, a, b):
        """The score of one arch in bucket b, written out plainly (the reference)."""
        v = sum(self.d[i, a.d[i] if i else a.d[0] // 2] for i in range(5)) + sum(self.w[j, a.w[j]] for j in range(6))
        v += sum(self.e[k, EXPAND_CHOICES.index(a.e[k])] for k in a.active_slots())
        return v + self.bw[b, a.w[5]]

    def arrays(self, arr, bucket):
        """The same scores for an ArchArrays, vectorised."""
        d = arr.d.copy()
        d[:, 0] //= 2
        v = self.d[np.arange(5)[None, :], d].sum(1) + self.w[np.arange(6)[None, :], arr.w].sum(1)
        v += (self.e[np.arange(18)[None, :], arr.e] * arr.active()).sum(1)
        return v + self.bw[np.asarray(bucket, np.int64), arr.w[:, 5]]

    def __call__(self, archs, flops, bucket):
        from nnabla_nas_detofa.space.batch import ArchArrays
        self.calls += 1
        return self.arrays(ArchArrays.from_archs(archs), bucket)


def chi_square_uniform(counts, expected=None):
    """p-value of counts against uniform (or given expected) counts."""
    counts = np.asarray(counts, np.float64)
    exp = np.full(len(counts), counts.sum() / len(counts)) if expected is None else np.asarray(expected, np.float64)
    stat = float(((counts - exp) ** 2 / exp).sum())
    dof = len(counts) - 1
    return chi2_sf(stat, dof)


def chi2_sf(x, k):
    """P(X >= x) for X chi-square with k degrees of freedom: the regularized upper incomplete gamma
    Q(k/2, x/2), by its series (x < a + 1) or continued fraction (Numerical Recipes 6.2)."""
    a, x = k / 2.0, x / 2.0
    if x <= 0:
        return 1.0
    lg = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - lg))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - lg) * h


__all__ = ["TINY", "SIZE", "small_space", "enumerate_space", "enumerated", "KnownScorer", "chi_square_uniform",
           "chi2_sf", "keys", "arch_keys", "hist", "makes"]


def keys(arrays):
    """One integer per path of an ArchArrays (dropped slots' ratios ignored), to count draws fast."""
    e = np.where(arrays.active(), arrays.e, 3)
    digits = np.concatenate([arrays.d, arrays.w, e], axis=1)       # every digit < 4
    return (digits * (4 ** np.arange(digits.shape[1]))[None, :]).sum(1)


def arch_keys(archs):
    from nnabla_nas_detofa.space.batch import ArchArrays
    return keys(ArchArrays.from_archs(archs))


def hist(arrays, support_keys):
    """Counts of the draws per support path; asserts no draw falls outside the support."""
    k = keys(arrays)
    pos = {int(v): i for i, v in enumerate(support_keys)}
    idx = np.array([pos.get(int(v), -1) for v in k])
    assert (idx >= 0).all(), "a draw outside the target set"
    return np.bincount(idx, minlength=len(support_keys))


def makes(arr, decision, choice):
    """(N,) bool: which paths of an ArchArrays make ``choice`` at ``decision`` (active decisions only)."""
    kind = decision.rstrip("0123456789")
    i = int(decision[len(kind):])
    if kind == "d":
        return arr.d[:, i] == choice
    if kind == "w":
        return arr.w[:, i] == choice
    if kind == "dw":
        return (arr.d[:, i] == choice[0]) & (arr.w[:, i + 1] == choice[1])
    return arr.active()[:, i] & (arr.e[:, i] == EXPAND_CHOICES.index(choice))
