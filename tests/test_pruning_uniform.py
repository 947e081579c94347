"""Exact uniform samplers of "paths of a space in a FLOPs bucket": chi-square against enumeration."""
import random
import numpy as np
import pytest
from pruning_cases import SIZE, TINY, arch_keys, chi_square_uniform, enumerated, hist

from nnabla_nas_detofa.pruning.uniform import Proposal
from nnabla_nas_detofa.space.bucket_uniform import CountingSampler, generator
from nnabla_nas_detofa.space import space_buckets
from nnabla_nas_detofa.space.batch import FlopsTable

P_MIN = 1e-3  # every chi-square below is one of a handful of tests: a false alarm is rare


@pytest.mark.parametrize("coupled,resolution", [(False, 4096), (False, 64), (True, 512)])
def test_counting_sampler_is_uniform_inside_each_bucket(coupled, resolution):
    sp, archs, flops, bk = enumerated(coupled)
    buckets = space_buckets(sp, TINY, SIZE)
    cs = CountingSampler(sp, FlopsTable(TINY, SIZE), buckets, resolution=resolution)
    assert int(cs.cum[-1]) == sp.size()
    gen = generator(random.Random(5))
    for b in range(5):
        target = [a for a, x in zip(archs, bk) if x == b]
        assert cs.superset_size(b) >= len(target) > 0
        m = 12 * len(target)
        dr = cs.draw(gen, b, m)
        got = dr.archs.take(np.nonzero(dr.accepted)[0])
        # acceptance is |T_b| / |U_b| with U_b counted exactly
        acc, want = dr.accepted.mean(), len(target) / cs.superset_size(b)
        assert abs(acc - want) < 4.5 * np.sqrt(want * (1 - want) / m) + 1e-12, (b, acc, want)
        # rejected draws are genuine paths of the space outside bucket b
        rej = dr.archs.take(np.nonzero(~dr.accepted)[0][:100]).to_archs()
        assert all(sp.contains(a) for a in rej)
        assert chi_square_uniform(hist(got, arch_keys(target))) > P_MIN, b


def test_counting_sampler_sample_stops_at_n_and_max_draws():
    sp, archs, flops, bk = enumerated(False)
    cs = CountingSampler(sp, FlopsTable(TINY, SIZE), space_buckets(sp, TINY, SIZE))
    got, fl, drawn = cs.sample(generator(1), 4, 50, max_draws=10_000)
    assert len(got) == 50 and drawn >= 50
    assert set(space_buckets(sp, TINY, SIZE).indices(fl)) == {4}
    got, fl, drawn = cs.sample(generator(1), 4, 10_000, max_draws=300)
    assert drawn == 300 and 0 < len(got) < 300


def _random_kept(sp, rng):
    ch = {dp: list(v) for dp, v in sp.choices.items()}
    kept = []
    for b in range(5):
        k = {}
        for dp, v in ch.items():
            if len(v) > 1 and rng.random() < 0.4:
                k[dp] = rng.sample(v, len(v) - 1)
        kept.append(sp.restrict(k))
    return kept


@pytest.mark.parametrize("seed", [0, 1])
def test_joint_proposal_is_uniform_over_the_union_of_targets(seed):
    sp, archs, flops, bk = enumerated(False)
    buckets = space_buckets(sp, TINY, SIZE)
    kept = _random_kept(sp, random.Random(seed))
    union = [a for a, b in zip(archs, bk) if kept[b].contains(a)]
    prop = Proposal([(kept[b], b) for b in range(5)], FlopsTable(TINY, SIZE), buckets)
    for b in range(5):
        assert prop.proposal_size[b] >= sum(1 for a, x in zip(archs, bk) if x == b and kept[b].contains(a))
        assert prop.space_size[b] == kept[b].size()
    gen = generator(random.Random(seed))
    m = 20 * len(union)
    dr = prop.draw(gen, m)
    acc = dr.accepted.mean()
    want = len(union) / prop.total
    assert abs(acc - want) < 4.5 * np.sqrt(want * (1 - want) / m)
    got = dr.archs.take(np.nonzero(dr.accepted)[0])
    assert chi_square_uniform(hist(got, arch_keys(union))) > P_MIN
    # per-bucket proportions follow |T_b| / |union|
    per = np.bincount(dr.bucket[dr.accepted], minlength=5)
    sizes = np.array([sum(1 for a, x in zip(archs, bk) if x == b and kept[b].contains(a)) for b in range(5)])
    assert chi_square_uniform(per[sizes > 0], per.sum() * sizes[sizes > 0] / sizes.sum()) > P_MIN


def test_draws_are_a_function_of_the_seed():
    sp, *_ = enumerated(False)
    buckets = space_buckets(sp, TINY, SIZE)
    prop = Proposal([(sp, b) for b in range(5)], FlopsTable(TINY, SIZE), buckets)
    a = prop.draw(generator(random.Random(3)), 100)
    b = prop.draw(generator(random.Random(3)), 100)
    c = prop.draw(generator(random.Random(4)), 100)
    assert a.archs.to_archs() == b.archs.to_archs() != c.archs.to_archs()
    with pytest.raises(TypeError):
        generator("seed")
