"""Sampling m paths per FLOPs bucket without enumerating the space."""
import random
import warnings

import pytest

from nnabla_nas_detofa.space import Buckets, SupernetConfig, get_space, mflops
from nnabla_nas_detofa.space.bucket_sampling import SamplingError, sample_per_bucket

FULL = (SupernetConfig(), 384)
TINY = (SupernetConfig(width_mult=0.125, divisor=1), 64)


def _edges(space, cfg, size, n=5):
    lo, hi = mflops(space.extreme(False), cfg, size), mflops(space.extreme(True), cfg, size)
    return lo, hi, [lo + (hi - lo) * i / n for i in range(n + 1)]


def _check(sample, space, cfg, size, m, n=5):
    lo, hi, edges = _edges(space, cfg, size, n)
    assert sample.buckets.lo == pytest.approx(lo) and sample.buckets.hi == pytest.approx(hi)
    assert len(sample.archs) == n
    for b in range(n):
        archs = sample.archs[b]
        assert len(archs) == m
        assert len(set(archs)) == m  # distinct networks
        for a, f in zip(archs, sample.flops[b]):
            assert space.contains(a)
            ff = mflops(a, cfg, size)  # recomputed independently of the sampler
            assert ff == pytest.approx(f)
            upper_ok = ff < edges[b + 1] if b < n - 1 else ff <= edges[b + 1]
            assert edges[b] <= ff and upper_ok, (b, ff, edges)


@pytest.mark.parametrize("cfg,size", [FULL, TINY])
def test_every_bucket_full_space(cfg, size):
    space = get_space("ofa")
    s = sample_per_bucket(space, cfg, size, 30, rng=3)
    _check(s, space, cfg, size, 30)
    assert s.repeated == [0] * 5
    assert len(s) == 150 and len(s.records()) == 150
    assert {r["bucket"] for r in s.records()} == set(range(5))


def test_uniform_sampling_misses_the_top_bucket():
    # the reason the sampler exists: uniform draws hardly ever reach the extreme buckets
    space, (cfg, size) = get_space("ofa"), FULL
    lo, hi, _ = _edges(space, cfg, size)
    b = Buckets(lo, hi, 5)
    rng = random.Random(0)
    top = sum(b.index(mflops(space.sample(rng), cfg, size)) == 4 for _ in range(500))
    assert top <= 2
    s = sample_per_bucket(space, cfg, size, 20, rng=0)
    assert len(s.archs[4]) == 20


def test_coupled_and_restricted_spaces():
    cfg, size = TINY
    comp = get_space("compofa")
    s = sample_per_bucket(comp, cfg, size, 20, rng=1)
    _check(s, comp, cfg, size, 20)
    for a in s.all_archs():
        for st in range(4):
            assert a.d[st + 1] == a.w[st + 2]  # the CompOFA* pairs (0,0.65) (1,0.8) (2,1.0)
    sub = get_space("ofa").restrict({("w", 5): [1, 2], ("e", 17): [0.35], ("d", 2): [1, 2]})
    s = sample_per_bucket(sub, cfg, size, 20, rng=1, n_buckets=4)
    _check(s, sub, cfg, size, 20, n=4)
    ps1 = get_space("ps1")
    s = sample_per_bucket(ps1, *FULL, 10, rng=1)
    _check(s, ps1, *FULL, 10)


def test_deterministic_with_seed():
    cfg, size = TINY
    space = get_space("ofa")
    a = sample_per_bucket(space, cfg, size, 10, rng=7)
    b = sample_per_bucket(space, cfg, size, 10, rng=random.Random(7))
    c = sample_per_bucket(space, cfg, size, 10, rng=8)
    assert [x.to_dict() for x in a.all_archs()] == [x.to_dict() for x in b.all_archs()]
    assert a.all_archs() != c.all_archs()


def test_accept_predicate_per_bucket():
    cfg, size = TINY
    space = get_space("ofa")
    seen = []

    def accept(arch, bucket):
        seen.append(bucket)
        return arch.d[0] == (0 if bucket % 2 == 0 else 2)

    s = sample_per_bucket(space, cfg, size, 15, rng=2, accept=accept)
    _check(s, space, cfg, size, 15)
    for b in range(5):
        assert all(a.d[0] == (0 if b % 2 == 0 else 2) for a in s.archs[b])
    assert set(seen) == set(range(5))


def test_one_space_per_bucket():
    cfg, size = TINY
    full = get_space("ofa")
    lo, hi, _ = _edges(full, cfg, size)
    buckets = Buckets(lo, hi, 5)
    spaces = [full.restrict({("d", 0): [0 if b % 2 == 0 else 2], ("e", 0): [0.2 if b < 3 else 0.35]})
              for b in range(5)]
    s = sample_per_bucket(spaces, cfg, size, 10, rng=0, buckets=buckets)
    for b in range(5):
        assert len(s.archs[b]) == 10
        for a, f in zip(s.archs[b], s.flops[b]):
            assert spaces[b].contains(a) and buckets.index(f) == b
    # a bucket whose space cannot reach it fails at once, naming the bucket
    small = full.restrict({("w", j): [0] for j in range(6)})
    with pytest.raises(SamplingError, match="bucket 4"):
        sample_per_bucket([full] * 4 + [small], cfg, size, 5, rng=0, buckets=buckets)
    with pytest.raises(ValueError, match="buckets"):
        sample_per_bucket([full] * 5, cfg, size, 5)


def _nine_path_space():
    # only stage 4's width (3 choices) and slot 0's expand ratio (3 choices) vary: 9 networks
    keep = {dp: [ch[0]] for dp, ch in get_space("ofa").choices.items()}
    keep[("w", 5)] = [0, 1, 2]
    keep[("e", 0)] = [0.2, 0.25, 0.35]
    return get_space("ofa").restrict(keep)


def test_short_bucket_policies():
    cfg, size = TINY
    space = _nine_path_space()
    assert space.size() == 9
    with pytest.warns(RuntimeWarning, match="only 9 distinct"):
        s = sample_per_bucket(space, cfg, size, 12, n_buckets=1, rng=0, patience=200)
    assert len(s.archs[0]) == 12 and len(set(s.archs[0])) == 9 and s.repeated == [3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sample_per_bucket(space, cfg, size, 12, n_buckets=1, rng=0, patience=200, short="fewer")
    assert len(s.archs[0]) == 9
    with pytest.raises(SamplingError, match="only 9 distinct"):
        sample_per_bucket(space, cfg, size, 12, n_buckets=1, rng=0, patience=200, short="raise")


def test_empty_bucket_raises():
    # two networks far apart in FLOPs: the middle buckets hold nothing
    keep = {dp: [ch[0]] for dp, ch in get_space("ofa").choices.items()}
    keep[("w", 5)] = [0, 2]
    space = get_space("ofa").restrict(keep)
    with pytest.raises(SamplingError, match="bucket 1"):
        sample_per_bucket(space, *TINY, 1, n_buckets=5, rng=0, patience=50)


def test_bad_arguments():
    with pytest.raises(ValueError, match="m="):
        sample_per_bucket(get_space("ofa"), *TINY, 0)
    with pytest.raises(ValueError, match="short="):
        sample_per_bucket(get_space("ofa"), *TINY, 1, short="skip")
    with pytest.raises(TypeError, match="rng="):
        sample_per_bucket(get_space("ofa"), *TINY, 1, rng="x")
