"""The pruned space Ã: membership, exact uniform sampling, |Ã|, thresholds, path pruning, files."""
import json
import random

import numpy as np
import pytest
from pruning_cases import SIZE, TINY, KnownScorer, arch_keys, chi_square_uniform, enumerated

from nnabla_nas_detofa.pruning import (FORMAT, PathThresholds, PrunedSpace, PruningError, StepDrawer,
                                       operation_scores, path_thresholds, prune_space, restrict)
from nnabla_nas_detofa.space.bucket_uniform import generator
from nnabla_nas_detofa.space import SupernetConfig, get_space, space_buckets
from nnabla_nas_detofa.space.batch import ArchArrays

P_MIN = 1e-3


@pytest.fixture(scope="module")
def case():
    """The small space pruned by the "all" strategy with a known scorer, and Ã by brute force."""
    sp, archs, flops, bk = enumerated(False)
    scorer = KnownScorer(3)
    scores = operation_scores(sp, TINY, SIZE, scorer, n=20, rng=2)
    # milder than the paper (0.1, 0.3): this space has few choices, 0.1 / 0.3 leave Ã 10 paths
    pruned = prune_space(sp, TINY, SIZE, scorer, "flops_score_all", r_op1=0.05, r_op2=0.1, scores=scores,
                         r_path=0.25, n_threshold=800, seed=1, size_draws=20000)
    kept = [restrict(sp, pruned.kept[b]) for b in range(5)]
    members = [i for i, (a, b) in enumerate(zip(archs, bk)) if kept[b].contains(a)]
    return sp, archs, bk, scorer, pruned, members


def test_membership_matches_brute_force(case):
    sp, archs, bk, scorer, pruned, members = case
    inside = set(members)
    assert 0 < len(members) < len(archs)
    assert [pruned.contains(a) for a in archs] == [i in inside for i in range(len(archs))]
    assert not pruned.contains(get_space("ofa").extreme(True))       # not a path of A at all
    assert all(len(pruned.strategy["pruned"][b]) > 0 for b in range(5))


def test_sampler_is_exactly_uniform_over_the_pruned_space(case):
    sp, archs, bk, scorer, pruned, members = case
    support = arch_keys([archs[i] for i in members])
    draws = pruned.sampler().sample_many(random.Random(0), 10 * len(members))
    keys = arch_keys([d.arch for d in draws])
    pos = {int(k): j for j, k in enumerate(support)}
    idx = np.array([pos.get(int(k), -1) for k in keys])
    assert (idx >= 0).all()
    counts = np.bincount(idx, minlength=len(support))
    assert chi_square_uniform(counts) > P_MIN
    # per-bucket proportions: |Ã_b| / |Ã|
    sizes = np.bincount(bk[members], minlength=5)
    per = np.bincount([d.bucket for d in draws], minlength=5)
    assert chi_square_uniform(per, len(draws) * sizes / sizes.sum()) > P_MIN
    assert all(d.bucket == pruned.bucket_of(d.arch) and d.flops == pruned.flops(d.arch) for d in draws[:50])


def test_size_estimate_matches_the_exact_count(case):
    sp, archs, bk, scorer, pruned, members = case
    est = pruned.size_estimate
    assert est["full"] == sp.size() == len(archs)
    assert abs(est["estimate"] - len(members)) <= 4 * est["stderr"] + 1e-9
    for row in est["per_bucket"]:
        exact = sum(1 for i in members if bk[i] == row["bucket"])
        assert abs(row["estimate"] - exact) <= 4 * row["stderr"] + 1e-9, row
        assert row["kept_product"] == restrict(sp, pruned.kept[row["bucket"]]).size()
        assert row["superset"] >= exact
    assert est["ratio"] == pytest.approx(est["estimate"] / len(archs))
    # the training sampler's acceptance: |Ã| / sum of the proposal sizes
    assert est["sampler_acceptance"] == pytest.approx(est["estimate"] / pruned.proposal().total)


def test_thresholds_are_the_r_path_quantile_of_each_bucket(case):
    sp, archs, bk, scorer, pruned, members = case
    thr = pruned.thresholds
    assert thr.r_path == 0.25 and thr.n == [800] * 5
    for b in range(5):
        idx = [i for i in members if bk[i] == b]
        pop = scorer.arrays(ArchArrays.from_archs([archs[i] for i in idx]), np.full(len(idx), b))
        below = float((pop < thr.values[b]).mean())
        # delta_b is a sample quantile of 800 uniform draws: the population share below it is ~25 %
        assert abs(below - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 800) + 1.0 / len(pop), (b, below, len(pop))
    # and exactly numpy's quantile of the paths it was computed on
    again = path_thresholds(pruned, scorer, 0.25, n=800, rng=123)
    a0, f0 = pruned.sample_bucket(generator(123), 0, 800)
    assert again.values[0] == float(np.quantile(scorer(a0.to_archs(), f0, np.zeros(800, int)), 0.25))


def test_path_pruned_sampler_is_uniform_over_the_accepted_paths(case):
    sp, archs, bk, scorer, pruned, members = case
    delta = pruned.thresholds.values
    sc = scorer.arrays(ArchArrays.from_archs([archs[i] for i in members]), bk[members])
    accepted = [i for i, v in zip(members, sc) if v >= delta[bk[i]]]
    assert 0.5 * len(members) < len(accepted) < len(members)
    sampler = pruned.sampler(scorer)
    draws = sampler.sample_many(random.Random(1), 10 * len(accepted))
    for d in draws[:200]:
        assert d.score >= delta[d.bucket] and d.score == pytest.approx(scorer.one(d.arch, d.bucket))
    support = arch_keys([archs[i] for i in accepted])
    pos = {int(k): j for j, k in enumerate(support)}
    idx = np.array([pos.get(int(k), -1) for k in arch_keys([d.arch for d in draws])])
    assert (idx >= 0).all()
    assert chi_square_uniform(np.bincount(idx, minlength=len(support))) > P_MIN
    one = sampler.sample(random.Random(2))
    assert one.score >= delta[one.bucket] and one.scored >= 1 and one.candidates >= 1
    acc = sampler.path_acceptance(random.Random(3), n=300)
    assert all(abs(a - 0.75) < 0.12 for a in acc), acc


def test_sampling_is_a_function_of_the_seed_only(case, tmp_path):
    sp, archs, bk, scorer, pruned, members = case
    s1, s2 = pruned.sampler(scorer), pruned.sampler(scorer)
    a = [s1.sample(random.Random(step)).arch for step in range(20)]
    s2.sample(random.Random(999))                          # earlier draws leave no trace
    b = [s2.sample(random.Random(step)).arch for step in reversed(range(20))][::-1]
    assert a == b and len(set(a)) > 10
    path = tmp_path / "pruned_space.json"
    pruned.save(str(path))
    again = PrunedSpace.load(str(path), TINY, SIZE).sampler(scorer)
    assert [again.sample(random.Random(step)).arch for step in range(20)] == a
    # a block of steps scored together draws the same paths; so does any scoring chunk size
    calls = scorer.calls
    block = s1.sample_steps([random.Random(step) for step in range(20)])
    assert [d.arch for d in block] == a and scorer.calls - calls <= 4      # a few calls for 20 draws
    assert [pruned.sampler(scorer, score_chunk=1).sample(random.Random(step)).arch for step in range(20)] == a
    plain = pruned.sampler()
    assert ([d.arch for d in plain.sample_steps([random.Random(t) for t in range(5)])]
            == [plain.sample(random.Random(t)).arch for t in range(5)])
    # blocks aligned on the step: a run resumed at step 13 draws what the first run drew
    first = StepDrawer(s1, lambda t: random.Random(7_000 + t), block=8)
    run1 = [first.path(t).arch for t in range(20)]
    resumed = StepDrawer(again, lambda t: random.Random(7_000 + t), block=8)
    assert [resumed.path(t).arch for t in range(13, 20)] == run1[13:]
    assert run1 == [s1.sample(random.Random(7_000 + t)).arch for t in range(20)]


def test_file_round_trip(case, tmp_path):
    sp, archs, bk, scorer, pruned, members = case
    path = tmp_path / "p.json"
    pruned.save(str(path))
    obj = json.loads(path.read_text())
    assert obj["format"] == FORMAT and obj["version"] == 1
    assert obj["supernet"] == TINY.to_dict() and obj["input_size"] == SIZE
    assert obj["buckets"]["edges"] == pytest.approx(space_buckets(sp, TINY, SIZE).edges)
    assert obj["strategy"]["strategy"] == "flops_score_all" and obj["strategy"]["r_op1"] == 0.05
    assert len(obj["operation_scores"]) == len(pruned.scores)
    back = PrunedSpace.load(str(path))
    assert back.kept == pruned.kept and back.buckets == pruned.buckets and back.space == sp
    assert back.thresholds.values == pruned.thresholds.values
    assert back.size_estimate == pruned.size_estimate
    assert [back.contains(a) for a in archs[::7]] == [pruned.contains(a) for a in archs[::7]]
    assert [r.to_dict() for r in back.scores] == [r.to_dict() for r in pruned.scores]


def _write(tmp_path, obj, name="bad.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj))
    return str(p)


def test_file_refusals(case, tmp_path):
    sp, archs, bk, scorer, pruned, members = case
    good = json.loads(json.dumps(pruned.to_dict()))

    def refused(obj, match, **kw):
        p = _write(tmp_path, obj)
        with pytest.raises(PruningError, match=match) as e:
            PrunedSpace.load(p, **kw)
        assert p in str(e.value) and "\n" not in str(e.value)

    refused({**good, "format": "other"}, "not a pruned space file")
    refused({**good, "version": 2}, "version 2 not supported")
    refused({k: v for k, v in good.items() if k != "supernet"}, "missing key 'supernet'")
    refused({**good, "kept": good["kept"][:4]}, "4 buckets, expected 5")
    bad = json.loads(json.dumps(good))
    bad["kept"][2]["e9"] = []
    refused(bad, r"\['kept'\]\[2\]\['e9'\]: every choice pruned")
    bad["kept"][2]["e9"] = [0.3]
    refused(bad, "e9: choices \\[0.3\\] are not in the space")
    bad["kept"][2] = {"x7": [1]}
    refused(bad, "'x7'.*not a decision")
    bad = json.loads(json.dumps(good))
    bad["buckets"]["hi"] *= 1.01
    refused(bad, "FLOPs range gives")
    with pytest.raises(PruningError, match="other supernet settings.*width_mult 0.125 in the file, 0.25 here"):
        PrunedSpace.load(_write(tmp_path, good), SupernetConfig(width_mult=0.25, divisor=1))
    with pytest.raises(PruningError, match="input size 64, not 96"):
        PrunedSpace.load(_write(tmp_path, good), TINY, 96)
    with pytest.raises(PruningError, match="num_classes 20 in the file, 5 here"):
        PrunedSpace.load(_write(tmp_path, good), SupernetConfig(num_classes=5, width_mult=0.125, divisor=1))
    # BN momentum does not change FLOPs: accepted
    PrunedSpace.load(_write(tmp_path, good), SupernetConfig(width_mult=0.125, divisor=1, bn_decay=0.99), SIZE)
    p = tmp_path / "broken.json"
    p.write_text("{")
    with pytest.raises(PruningError, match="broken.json:1:2: invalid JSON"):
        PrunedSpace.load(str(p))


def test_edge_cases_raise_clear_errors(case):
    sp, archs, bk, scorer, pruned, members = case
    buckets = pruned.buckets
    smallest = {d: v[:1] for d, v in pruned.kept[4].items()}
    kept = list(pruned.kept)
    kept[4] = smallest                               # only the smallest choices in the top bucket
    with pytest.raises(PruningError, match="bucket 4 .* is empty"):
        PrunedSpace(sp, TINY, SIZE, buckets, kept)
    with pytest.raises(PruningError, match="bucket 1: decision d1: every choice would be pruned"):
        PrunedSpace(sp, TINY, SIZE, buckets, [{}, {"d1": []}, {}, {}, {}])
    high = PathThresholds(0.25, [1e9] * 5, [1] * 5)
    with pytest.raises(PruningError, match="acceptance collapsed in bucket [0-4].*acceptance 0 of"):
        pruned.sampler(scorer, high, max_scored=50).sample(random.Random(0))
    with pytest.raises(PruningError, match="non-finite"):
        pruned.sampler(lambda a, f, b: np.full(len(a), np.nan), high).sample(random.Random(0))
    # the proposal's own acceptance: with a cap of one candidate, draws that miss their bucket stop
    errors = 0
    for seed in range(40):
        try:
            pruned.sampler(batch=1, max_candidates=1).sample(random.Random(seed))
        except PruningError as err:
            assert "acceptance collapsed: none of 1 candidates landed" in str(err)
            errors += 1
    assert 0 < errors < 40
    with pytest.raises(PruningError, match="must be in \\[0, 1\\)"):
        path_thresholds(pruned, scorer, r_path=1.0)
    with pytest.raises(PruningError, match="needs thresholds"):
        PrunedSpace(sp, TINY, SIZE, buckets, pruned.kept).sampler(scorer)


def test_coupled_space_is_supported():
    sp, archs, flops, bk = enumerated(True)
    scorer = KnownScorer(5)
    pruned = prune_space(sp, TINY, SIZE, scorer, "flops_score_bucket", r_op=0.3, n=20, seed=2, size_draws=4000)
    assert any(o["decision"].startswith("dw") for p in pruned.strategy["pruned"] for o in p)
    kept = [restrict(sp, pruned.kept[b]) for b in range(5)]
    members = {a for a, b in zip(archs, bk) if kept[b].contains(a)}
    draws = pruned.sampler().sample_many(random.Random(0), 300)
    assert {d.arch for d in draws} <= members
    assert all(d.arch.d[s + 1] == d.arch.w[s + 2] for d in draws for s in range(4))   # CompOFA* pairs
    assert abs(pruned.size_estimate["estimate"] - len(members)) <= 4 * pruned.size_estimate["stderr"] + 1e-9
