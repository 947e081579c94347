"""The three pruning strategies: a hand-worked case, the random one's spread, invariants."""
import itertools
import random

import numpy as np
import pytest
from pruning_cases import SIZE, TINY, KnownScorer, enumerate_space, enumerated

from nnabla_nas_detofa.pruning import (Operation, OperationScores, PruningError, ScoreRow, operation_scores,
                                       operations, prune_operations, restrict)
from nnabla_nas_detofa.pruning.scores import uses
from nnabla_nas_detofa.space import get_space, space_buckets
from nnabla_nas_detofa.space.batch import ArchArrays, FlopsTable

NAN = float("nan")
O = Operation
# hand-worked scores; d1=2 has no path in bucket 0, d1=0 none in bucket 2
HAND = {
    O("d1", 0): (.50, .35, NAN), O("d1", 1): (.60, .15, .05), O("d1", 2): (NAN, .25, .95),
    O("w5", 1): (.10, .90, .85), O("w5", 2): (.20, .55, .60),
    O("e0", 0.2): (.30, .65, .70), O("e0", 0.35): (.80, .05, .80),
    O("e9", 0.2): (.70, .45, .10), O("e9", 0.35): (.40, .75, .20),
}


def hand_space():
    keep = {dp: list(v)[-1:] for dp, v in get_space("ofa").choices.items()}
    keep.update({("d", 1): [0, 1, 2], ("w", 5): [1, 2], ("e", 0): [0.2, 0.35], ("e", 9): [0.2, 0.35]})
    keep.update({("e", k): [0.25] for k in range(18) if k not in (0, 9)})
    keep.update({("d", s): [1] for s in (2, 3, 4)})
    return get_space("ofa").restrict(keep, name="hand")


@pytest.fixture(scope="module")
def hand():
    sp = hand_space()
    archs, flops, bk = enumerate_space(sp, n_buckets=3)
    buckets = space_buckets(sp, TINY, SIZE, 3)
    arr = ArchArrays.from_archs(archs)
    ops = operations(sp)
    assert ops == list(HAND)
    rows = []
    for op in ops:
        for b in range(3):
            n = int((uses(arr, op) & (bk == b)).sum())
            assert (n > 0) == (not np.isnan(HAND[op][b])), (op, b)
            rows.append(ScoreRow(op.decision, op.choice, b, HAND[op][b], n, 0.0, n, n > 0))
    wit = [arr.take(np.nonzero(bk == b)[0]) for b in range(3)]   # every path of the bucket
    return sp, archs, bk, OperationScores(sp, buckets, ops, rows, 1, wit)


def _facts(archs, bk):
    """The few facts about bucket 0 the hand-worked expectations rely on."""
    b0 = [a for a, b in zip(archs, bk) if b == 0]
    only_w5_2 = [a for a in b0 if a.w[5] == 2]
    only_e9_35 = [a for a in b0 if a.e[9] == 0.35]
    assert len(b0) == 5 and len(only_w5_2) == 1 and len(only_e9_35) == 1
    assert only_w5_2[0].e[0] == 0.2 and only_e9_35[0].w[5] == 1 and only_e9_35[0].d[1] == 0


def test_per_bucket_worst_operations(hand):
    sp, archs, bk, scores = hand
    _facts(archs, bk)
    r = prune_operations(scores, "flops_score_bucket", r_op=0.3, table=FlopsTable(TINY, SIZE))
    # bucket 0: 8 present -> 2; w5=1 (.10); w5=2 (.20) would leave w5 empty; e0=0.2 (.30) would
    # empty the bucket (its only w5=2 path has e0=0.2); e9=0.35 (.40) taken
    assert r.pruned[0] == [O("w5", 1), O("e9", 0.35)]
    assert [(o, why.split(" ")[0]) for o, why in r.skipped[0]] == [(O("w5", 2), "its"), (O("e0", 0.2), "bucket")]
    # bucket 1: 9 present -> 3 lowest: e0=0.35, d1=1, d1=2
    assert r.pruned[1] == [O("e0", 0.35), O("d1", 1), O("d1", 2)] and not r.skipped[1]
    # bucket 2: 8 present -> 2 lowest: d1=1, e9=0.2
    assert r.pruned[2] == [O("d1", 1), O("e9", 0.2)]
    assert r.kept[1]["d1"] == (0,) and r.kept[1]["e0"] == (0.2,) and r.kept[1]["w5"] == (1, 2)
    assert r.kept[0]["d1"] == (0, 1, 2)     # d1=2 never ranked in bucket 0 (absent), kept


def test_all_buckets_then_per_bucket(hand):
    sp, archs, bk, scores = hand
    r = prune_operations(scores, "flops_score_all", r_op1=0.25, r_op2=0.3, table=FlopsTable(TINY, SIZE))
    # stage 1: 9 operations -> 2 with the lowest mean of per-bucket means: d1=1 (.267), e9=0.2 (.417)
    assert r.pruned_all == [O("d1", 1), O("e9", 0.2)]
    for b in range(3):
        assert r.pruned[b][:2] == [O("d1", 1), O("e9", 0.2)]
    # stage 2, bucket 0: 6 left -> 2: w5=1 would empty the bucket (the e9=0.35 path has w5=1),
    # w5=2 taken, e0=0.2 would empty it, e9=0.35 / d1=0 are their decisions' last present choices,
    # e0=0.35 taken
    assert r.pruned[0][2:] == [O("w5", 2), O("e0", 0.35)]
    # bucket 1: 7 left -> 2: e0=0.35 (.05), d1=2 (.25)
    assert r.pruned[1][2:] == [O("e0", 0.35), O("d1", 2)]
    # bucket 2: 6 left (d1=0 absent) -> 2: e9=0.35 (.20) is e9's last choice left;
    # w5=2 (.60), e0=0.2 (.70) lowest of the rest
    assert r.pruned[2][2:] == [O("w5", 2), O("e0", 0.2)]


def test_random_strategy_draws_varied_subsets(hand):
    sp, archs, bk, scores = hand
    table = FlopsTable(TINY, SIZE)
    seen, counts = set(), {op: 0 for op in HAND}
    for seed in range(120):
        r = prune_operations(scores, "flops", r_op=0.3, rng=seed, table=table)
        assert len(r.pruned[1]) == 3          # round(0.3 * 9)
        seen.add(frozenset(r.pruned[1]))
        for op in r.pruned[1]:
            counts[op] += 1
    again = prune_operations(scores, "flops", r_op=0.3, rng=5, table=table)
    assert again.pruned == prune_operations(scores, "flops", r_op=0.3, rng=5, table=table).pruned
    assert len(seen) > 30                     # of the C(9, 3) = 84 subsets
    assert min(counts.values()) > 10          # every operation gets pruned now and then (mean 40)


def test_ratio_and_argument_errors(hand):
    sp, archs, bk, scores = hand
    t = FlopsTable(TINY, SIZE)
    for bad in (-0.1, 1.0, 1.5, float("nan"), "0.3", True):
        with pytest.raises(PruningError, match="must be in \\[0, 1\\)"):
            prune_operations(scores, "flops_score_bucket", r_op=bad, table=t)
    with pytest.raises(PruningError, match="r_op1 and r_op2"):
        prune_operations(scores, "flops_score_all", r_op=0.3, table=t)
    with pytest.raises(PruningError, match="takes r_op"):
        prune_operations(scores, "flops", r_op1=0.3, table=t)
    with pytest.raises(PruningError, match="strategy="):
        prune_operations(scores, "best", r_op=0.3, table=t)
    r = prune_operations(scores, "flops_score_bucket", r_op=0.0, table=t)
    assert r.pruned == [[], [], []]
    with pytest.raises(PruningError, match="every choice would be pruned"):
        restrict(sp, {"w5": []})


@pytest.fixture(scope="module")
def small_scores():
    sp, archs, flops, bk = enumerated(False)
    return sp, archs, bk, operation_scores(sp, TINY, SIZE, KnownScorer(4), n=20, rng=1)


def test_invariants_under_random_ratios(small_scores):
    sp, archs, bk, scores = small_scores
    table = FlopsTable(TINY, SIZE)
    arr = ArchArrays.from_archs(archs)
    rng = random.Random(0)
    for trial in range(6):
        strategy = rng.choice(["flops", "flops_score_bucket", "flops_score_all"])
        if strategy == "flops_score_all":
            kw = {"r_op1": rng.uniform(0, 0.6), "r_op2": rng.uniform(0, 0.95)}
        else:
            kw = {"r_op": rng.uniform(0, 0.95)}
        r = prune_operations(scores, strategy, rng=trial, table=table if trial % 2 else None, **kw)
        for b in range(5):
            kb = restrict(sp, r.kept[b])
            inside = [a for a, x in zip(archs, bk) if x == b]
            assert any(kb.contains(a) for a in inside), (strategy, kw, b)        # no bucket empty
            for dec, vals in itertools.groupby(operations(sp), key=lambda o: o.decision):
                vals = list(vals)
                present = [o for o in vals if (uses(arr, o) & (bk == b)).any()]
                if present:                                                        # decision keeps a choice
                    assert any(o.choice in r.kept[b][dec] for o in present), (strategy, kw, b, dec)
            for op in r.pruned[b]:
                assert op.choice not in r.kept[b][op.decision]
