"""Operation scores: against brute-force means over the enumerated small space."""
import numpy as np
import pytest
from pruning_cases import SIZE, TINY, KnownScorer, enumerated, makes

from nnabla_nas_detofa.pruning import Operation, PruningError, operation_scores, operations
from nnabla_nas_detofa.space import Buckets, space_buckets
from nnabla_nas_detofa.space.batch import ArchArrays, FlopsTable


def test_operations_are_the_choices_paths_actually_make():
    sp, archs, _, _ = enumerated(False)
    arr = ArchArrays.from_archs(archs)
    ops = operations(sp)
    # independent rule: a choice of a decision with >= 2 choices that some path makes
    expect = set()
    for (kind, i), vals in sp.choices.items():
        if len(vals) < 2:
            continue
        for v in vals:
            op = Operation(f"{kind}{i}", v)
            if makes(arr, op.decision, op.choice).any():
                expect.add(op)
    assert set(ops) == expect and len(ops) == len(expect)
    assert Operation("e3", 0.2) in expect and not any(o.decision == "e13" for o in ops)   # e13 never runs
    csp, carchs, _, _ = enumerated(True)
    cops = operations(csp)
    assert {o.decision for o in cops if o.decision.startswith("dw")} == {"dw1", "dw2", "dw3"}   # dw4: one pair
    assert {o.choice for o in cops if o.decision == "dw3"} == {(0, 0), (1, 1)}
    assert {o.choice for o in cops if o.decision == "dw1"} == {(0, 0), (1, 1), (2, 2)}
    assert not {o.decision for o in cops} & {"d1", "d2", "d3", "d4", "w2", "w3", "w4", "w5"}


@pytest.mark.parametrize("coupled", [False, True])
def test_scores_match_brute_force_means_per_bucket(coupled):
    sp, archs, flops, bk = enumerated(coupled)
    scorer = KnownScorer(1)
    arr = ArchArrays.from_archs(archs)
    truth = scorer.arrays(arr, bk)
    assert [truth[i] for i in range(0, len(archs), 101)] == pytest.approx(
        [scorer.one(archs[i], bk[i]) for i in range(0, len(archs), 101)])
    n = 60
    res = operation_scores(sp, TINY, SIZE, scorer, n=n, rng=3)
    assert res.buckets == space_buckets(sp, TINY, SIZE)
    assert len(res.rows) == 5 * len(operations(sp))
    bad = []
    for r in res.rows:
        op = Operation(r.decision, r.choice)
        pop = truth[(bk == r.bucket) & makes(arr, op.decision, op.choice)]
        if len(pop) == 0:
            assert r.n == 0 and np.isnan(r.score)
            continue
        assert r.possible and r.n == n, (r, len(pop))
        tol = 4.5 * pop.std() / np.sqrt(n) + 1e-9
        if abs(r.score - pop.mean()) > tol:
            bad.append((r, pop.mean(), tol))
    assert not bad, bad[:3]
    assert not res.short_cells()
    # the paths drawn per bucket are the witnesses: paths of the space in their bucket
    for b in range(5):
        w = res.witnesses[b]
        assert len(w) == sum(r.n for r in res.rows if r.bucket == b)
        assert set(res.buckets.indices(FlopsTable(TINY, SIZE).mflops(w)).tolist()) == {b}
        assert all(sp.contains(a) for a in w.take(np.arange(0, len(w), 97)).to_archs())
    table = res.table()
    assert set(table[0]) == {"decision", "choice", "bucket", "score", "n", "std", "drawn", "possible"}


def test_impossible_cells_are_exact_and_scores_deterministic():
    sp, archs, flops, bk = enumerated(False)
    arr = ArchArrays.from_archs(archs)
    a = operation_scores(sp, TINY, SIZE, KnownScorer(2), n=10, rng=7)
    b = operation_scores(sp, TINY, SIZE, KnownScorer(2), n=10, rng=7)
    assert [r.to_dict() for r in a.rows] == [r.to_dict() for r in b.rows]
    for r in a.rows:
        if not r.possible:   # proven empty: no path of the space makes the choice in that bucket
            assert not ((bk == r.bucket) & makes(arr, r.decision, r.choice)).any()


def test_scorer_errors():
    sp, *_ = enumerated(False)
    with pytest.raises(PruningError, match="non-finite"):
        operation_scores(sp, TINY, SIZE, lambda a, f, b: np.full(len(a), np.nan), n=2)
    with pytest.raises(PruningError, match="3 scores for"):
        operation_scores(sp, TINY, SIZE, lambda a, f, b: np.zeros(3), n=2)
    with pytest.raises(PruningError, match="expected a callable"):
        operation_scores(sp, TINY, SIZE, 42, n=2)
    with pytest.raises(PruningError, match="positive number"):
        operation_scores(sp, TINY, SIZE, KnownScorer(), n=0)

    class FakeFilter:  # a PathFilter by duck typing, trained on other buckets
        class config:
            buckets = Buckets(1.0, 2.0, 5)

        def score(self, archs, flops=None, bucket=None):
            return np.zeros(len(archs))

    with pytest.raises(PruningError, match="trained on buckets"):
        operation_scores(sp, TINY, SIZE, FakeFilter(), n=2)
    FakeFilter.config.buckets = space_buckets(sp, TINY, SIZE)
    res = operation_scores(sp, TINY, SIZE, FakeFilter(), n=2)
    assert all(r.score == 0 for r in res.rows if r.n)
