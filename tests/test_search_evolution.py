"""Regularized evolution, once-for-all's truncation evolution and random search (search/)."""
import random

import numpy as np
import pytest

from nnabla_nas_detofa.search import (Constraint, Evaluator, Feasibility, RegularizedEvolution, SearchError,
                                      TargetFitness, TruncationEvolution, differing_genes, flops_constraint, genes,
                                      mutate, params_constraint, path_filter_fitness, random_search,
                                      regularized_evolution, truncation_evolution)
from nnabla_nas_detofa.search import truncation as truncation_module
from nnabla_nas_detofa.space import Arch, SupernetConfig, flops_range, get_space, make_space, mflops, param_count

CFG = SupernetConfig(num_classes=3, width_mult=0.125, divisor=1)
SIZE = 64
OFA = get_space("ofa")


def budget(fraction, space=OFA):
    lo, hi = flops_range(space, CFG, SIZE)
    return lo + fraction * (hi - lo)


def target_under(fraction, seed, space=OFA):
    """A random path with FLOPs between ``fraction`` -/+ 0.1 of the range, and its FLOPs (drawn from
    another stream than the searches' ``random.Random(seed)``: their first sample is not the target)."""
    rng = random.Random(10_000 + seed)
    while True:
        a = space.sample(rng)
        f = mflops(a, CFG, SIZE)
        if budget(fraction - 0.1, space) < f < budget(fraction + 0.1, space):
            return a, f


def toy_fitness(archs):
    """A deterministic fitness that rewards FLOPs (so the search presses on the budget)."""
    return np.array([mflops(a, CFG, SIZE) + 0.01 * (hash(a.to_json()) % 97) for a in archs])


# --- regularized evolution -------------------------------------------------------------------
def test_tournament_mutation_and_aging_step_by_step():
    c = flops_constraint(budget(0.4), CFG, SIZE)
    ev = RegularizedEvolution(OFA, toy_fitness, [c], population_size=20, sample_size=5, batch_size=1,
                              max_changes=2, seed=3)
    ev.initialize()
    assert len(ev.population) == 20 and [m.born for m in ev.population] == list(range(20))
    gl = genes(OFA)
    for step in range(60):
        before = list(ev.population)
        (child,) = ev.step()
        (sample, winner), = ev.last_tournaments
        assert len(sample) == 5 and len({m.born for m in sample}) == 5          # S distinct members
        assert all(m in before for m in sample)
        assert winner.fitness == max(m.fitness for m in sample)                 # the best of the sample
        diff = differing_genes(winner.arch, child.arch, gl)
        assert 1 <= len(diff) <= 2 and child.arch != winner.arch                 # 1..k decisions changed
        assert c.value(child.arch) <= c.limit and OFA.contains(child.arch)
        after = list(ev.population)
        assert len(after) == 20                                                 # size stays P
        assert after[:-1] == before[1:] and after[-1] == child                  # the oldest died
        assert min(m.born for m in before) not in {m.born for m in after}
    assert ev.children == 60


def test_batched_children_enter_in_order_and_the_oldest_die():
    c = flops_constraint(budget(0.5), CFG, SIZE)
    ev = RegularizedEvolution(OFA, toy_fitness, [c], population_size=16, sample_size=4, batch_size=6, seed=0,
                              max_changes=1)
    ev.initialize()
    for _ in range(10):
        before = list(ev.population)
        kids = ev.step()
        assert len(kids) == 6 and len(ev.last_tournaments) == 6
        assert list(ev.population) == before[6:] + kids
        assert [m.born for m in ev.population] == list(range(ev.born - 16, ev.born))   # the 16 youngest
        for (sample, winner), kid in zip(ev.last_tournaments, kids):
            assert all(m in before for m in sample)                          # parents from the population
            assert len(differing_genes(winner.arch, kid.arch, genes(OFA))) == 1


def test_run_keeps_every_constraint_and_counts_calls():
    fc = flops_constraint(budget(0.35), CFG, SIZE)
    pc = params_constraint(param_count(OFA.extreme(True), CFG) * 0.6 / 1e6, CFG)
    seen = []

    def fitness(archs):
        seen.extend(archs)
        return toy_fitness(archs)

    res = regularized_evolution(OFA, fitness, [fc, pc], population_size=30, sample_size=6, generations=8, seed=1)
    assert len(seen) == res.calls == len(set(seen))          # memoised: every scored path scored once
    assert res.requests == 30 + 8 * 30 and res.calls <= res.requests
    for a in seen:
        assert fc.value(a) <= fc.limit and pc.value(a) <= pc.limit
    assert res.metrics["flops"] == mflops(res.best_arch, CFG, SIZE) <= fc.limit
    assert res.metrics["params"] == param_count(res.best_arch, CFG) / 1e6
    assert res.best_fitness == max(toy_fitness(seen))
    calls = [c for c, _ in res.history]
    best = [b for _, b in res.history]
    assert calls == sorted(calls) and best == sorted(best) and calls[-1] == res.calls
    assert res.best_after(res.calls) == res.best_fitness
    assert res.best_after(30) == max(toy_fitness(seen[:30]))
    assert len(res.population) == 30


def test_result_file(tmp_path):
    c = flops_constraint(budget(0.5), CFG, SIZE)
    res = random_search(OFA, toy_fitness, [c], n_calls=40, seed=0, batch_size=16,
                        metrics={"mflops_backbone": lambda a: mflops(a, CFG, SIZE, "backbone")})
    path = str(tmp_path / "result.json")
    res.save(path)
    import json
    obj = json.loads(open(path).read())
    assert Arch.from_dict(obj["best_arch"]) == res.best_arch and obj["best_fitness"] == res.best_fitness
    assert obj["metrics"]["mflops_backbone"] == mflops(res.best_arch, CFG, SIZE, "backbone")
    assert obj["history"] == [[16, res.best_after(16)], [32, res.best_after(32)], [40, res.best_after(40)]]
    assert obj["settings"]["constraints"] == [c.describe()] and obj["calls"] == 40


def test_deterministic_by_seed():
    c = flops_constraint(budget(0.5), CFG, SIZE)
    kw = dict(population_size=20, sample_size=5, generations=5, batch_size=4, max_changes=2)
    a = regularized_evolution(OFA, toy_fitness, [c], seed=7, **kw)
    b = regularized_evolution(OFA, toy_fitness, [c], seed=7, **kw)
    other = regularized_evolution(OFA, toy_fitness, [c], seed=8, **kw)
    assert np.array_equal(a.trace, b.trace) and a.best_arch == b.best_arch and a.history == b.history
    assert not np.array_equal(a.trace[:len(other.trace)], other.trace[:len(a.trace)])
    t1 = truncation_evolution(OFA, toy_fitness, [c], population_size=20, generations=3, seed=7)
    t2 = truncation_evolution(OFA, toy_fitness, [c], population_size=20, generations=3, seed=7)
    assert np.array_equal(t1.trace, t2.trace)
    r1, r2 = (random_search(OFA, toy_fitness, [c], n_calls=50, seed=7) for _ in range(2))
    assert np.array_equal(r1.trace, r2.trace)


def test_finds_the_known_optimum_better_than_random_search_at_equal_calls():
    wins = 0
    for seed in range(3):
        target, f = target_under(0.4, seed)
        fitness = TargetFitness(target, seed=seed)
        c = flops_constraint(f, CFG, SIZE)      # the target lies on the budget's edge
        n = 1000
        re = regularized_evolution(OFA, fitness, [c], population_size=30, sample_size=8, generations=1000,
                                   max_calls=n, seed=seed)
        rs = random_search(OFA, fitness, [c], n_calls=n, seed=seed)
        assert re.calls == rs.calls == n
        assert re.best_fitness > rs.best_fitness + 5      # random search stays many decisions away
        assert re.best_fitness >= -1.5                     # evolution: at most one decision (weight <= 1.5) off
        assert fitness([target])[0] == 0.0 and re.best_fitness <= 0.0
        # one decision per mutation (Real et al.) climbs a separable fitness fastest: the optimum itself
        one = regularized_evolution(OFA, fitness, [c], population_size=30, sample_size=8, generations=1000,
                                    max_calls=n, seed=seed, max_changes=1)
        wins += one.best_arch == target
    assert wins >= 2


# --- errors and spaces -----------------------------------------------------------------------
def test_two_sided_flops_constraint_searches_one_bucket():
    lo, hi = budget(0.4), budget(0.6)
    c = flops_constraint(hi, CFG, SIZE, min_mflops=lo)
    assert c.describe() == f"{lo:g} <= flops <= {hi:g} MFLOPs"
    res = regularized_evolution(OFA, toy_fitness, [c], population_size=20, sample_size=5, generations=4, seed=0)
    assert all(lo <= mflops(a, CFG, SIZE) <= hi for a, _ in res.population)
    assert lo <= res.metrics["flops"] <= hi
    with pytest.raises(SearchError, match="lower limit .* exceeds the limit"):
        flops_constraint(lo, CFG, SIZE, min_mflops=hi)


def test_no_feasible_sample_names_the_constraint():
    c = flops_constraint(0.001, CFG, SIZE)
    with pytest.raises(SearchError, match=r"flops <= 0.001 MFLOPs: \d+ rejected, smallest seen"):
        regularized_evolution(OFA, toy_fitness, [c], population_size=10, sample_size=3, generations=1)
    with pytest.raises(SearchError, match="flops <= 0.001"):
        random_search(OFA, toy_fitness, [c], n_calls=5)
    with pytest.raises(SearchError, match="flops <= 0.001"):
        truncation_evolution(OFA, toy_fitness, [c], population_size=10, generations=1)


def test_mutation_that_can_never_meet_the_constraints():
    two = make_space(depths=(0,), widths=(0.65,), expands=(0.2,), stem_depths=(0, 2))  # two paths
    only_shallow = Constraint("stem_depth", lambda a: a.d[0], 0)
    gl = genes(two)
    shallow = two.extreme(False)
    with pytest.raises(SearchError, match=r"mutation: no candidate .* in 50 draws .*stem_depth <= 0: 50 rejected"):
        mutate(shallow, gl, Feasibility(two, [only_shallow]), random.Random(0), max_tries=50)
    # the evolution then draws fresh paths; the only feasible one is the parent: the child repeats
    # it (memoised, no fitness call) and the search ends with that path
    ev = RegularizedEvolution(two, toy_fitness, [only_shallow], population_size=4, sample_size=2, batch_size=1,
                              max_tries=50, generations=2)
    res = ev.run()
    assert res.best_arch == shallow and ev.fresh_children == 8 and ev.evaluator.calls == 1
    assert ev._isolated == {shallow: "alone"}     # found once, then the child repeats it at once
    # a sampler that can meet the constraints nowhere still stops with the error
    with pytest.raises(SearchError, match=r"initial population: only 0 of 4 samples .* in 400 draws"):
        RegularizedEvolution(two, toy_fitness, [Constraint("stem_depth", lambda a: a.d[0], -1)], population_size=4,
                             sample_size=2, max_tries=4).run()
    one = make_space(depths=(0,), widths=(0.65,), expands=(0.2,), stem_depths=(0,))
    with pytest.raises(SearchError, match="no decision with two or more choices"):
        regularized_evolution(one, toy_fitness, population_size=4, sample_size=2, generations=1)


def test_a_parent_without_feasible_neighbours_gives_way_to_a_fresh_path():
    """A narrow FLOPs window of a pruned space can leave a path with no feasible 1-2 gene
    neighbour: the child is then a fresh feasible path, and the search goes on."""
    gl = genes(OFA)
    rng = random.Random(0)
    islands = [OFA.sample(rng) for _ in range(3)]

    def far(a):   # feasible: one of the islands, or 4+ genes away from every island
        return 0 if a in islands or min(len(differing_genes(a, i, gl)) for i in islands) >= 4 else 1

    c = Constraint("far", far, 0)
    ev = RegularizedEvolution(OFA, toy_fitness, [c], population_size=4, sample_size=4, batch_size=1, seed=1)
    ev.population.clear()
    ev._add(islands + [islands[0]], ev.evaluator(islands + [islands[0]]))
    kids = ev.step()
    assert ev.fresh_children == 1 and len(kids) == 1
    child = kids[0].arch
    assert OFA.contains(child) and far(child) == 0 and child not in islands
    res = ev.run()
    assert res.settings["fresh_children"] >= 1 and res.settings["children"] == ev.generations * 4


def test_bad_arguments_are_refused():
    with pytest.raises(SearchError, match="sample_size=30 exceeds population_size=20"):
        RegularizedEvolution(OFA, toy_fitness, population_size=20, sample_size=30)
    with pytest.raises(SearchError, match="max_calls=5 cannot score the initial population"):
        RegularizedEvolution(OFA, toy_fitness, population_size=20, sample_size=5, max_calls=5)
    with pytest.raises(SearchError, match="parent_ratio"):
        TruncationEvolution(OFA, toy_fitness, parent_ratio=1.5)
    with pytest.raises(SearchError, match="each name may appear once"):
        Feasibility(OFA, [flops_constraint(1, CFG, SIZE), flops_constraint(2, CFG, SIZE)])
    with pytest.raises(SearchError, match="returned 1 values for 2 archs"):
        Evaluator(lambda a: [0.0])([OFA.extreme(True), OFA.extreme(False)])
    with pytest.raises(SearchError, match="non-finite"):
        Evaluator(lambda a: [float("nan")] * len(a))([OFA.extreme(True)])


def test_coupled_space_mutates_depth_and_width_together():
    comp = get_space("compofa")
    gl = genes(comp)
    assert [g.name for g in gl[:7]] == ["d0", "w0", "w1", "dw1", "dw2", "dw3", "dw4"]
    c = flops_constraint(budget(0.5, comp), CFG, SIZE)
    feas = Feasibility(comp, [c])
    rng = random.Random(0)
    parent = comp.sample(rng)
    while not feas.ok(parent):
        parent = comp.sample(rng)
    changed_pair = 0
    for _ in range(200):
        child = mutate(parent, gl, feas, rng)
        assert comp.contains(child)
        assert len(differing_genes(parent, child, gl)) == 1
        changed_pair += any(n.startswith("dw") for n in differing_genes(parent, child, gl))
    assert changed_pair > 0
    res = regularized_evolution(comp, toy_fitness, [c], population_size=20, sample_size=5, generations=5, seed=2)
    assert all(comp.contains(a) for a, _ in res.population) and comp.contains(res.best_arch)


class ContainsOnly:
    """A space known only by sample / contains (as a pruned space): no expand ratio 0.2 allowed."""

    name = "contains-only"

    def __init__(self):
        self.base = make_space(expands=(0.25, 0.35))

    def sample(self, rng):
        return self.base.sample(rng)

    def contains(self, arch):
        return all(arch.e[k] != 0.2 for k in arch.active_slots())


def test_space_without_choices_is_searched_through_contains():
    space = ContainsOnly()
    seen = []

    def fitness(archs):
        seen.extend(archs)
        return toy_fitness(archs)

    c = flops_constraint(budget(0.5), CFG, SIZE)
    regularized_evolution(space, fitness, [c], population_size=20, sample_size=5, generations=6, max_changes=2)
    truncation_evolution(space, fitness, [c], population_size=20, generations=3)
    assert len(seen) > 100 and all(space.contains(a) for a in seen)


def test_pruned_space_is_searched_through_its_sampler_and_membership():
    from nnabla_nas_detofa.pruning import PrunedSpace
    from nnabla_nas_detofa.space import space_buckets
    buckets = space_buckets(OFA, CFG, SIZE)
    # per bucket, other choices kept: bucket 0 everything, the rest no expand ratio 0.2 in unit slot 0,
    # and the top two buckets only the widest stem
    kept = [{}] + [{"e0": [0.25, 0.35]}] * 2 + [{"e0": [0.25, 0.35], "w0": [2]}] * 2
    pruned = PrunedSpace(OFA, CFG, SIZE, buckets, kept)
    seen = []

    def fitness(archs):
        seen.extend(archs)
        return toy_fitness(archs)

    c = flops_constraint(budget(0.7), CFG, SIZE)
    res = regularized_evolution(pruned, fitness, [c], population_size=20, sample_size=5, generations=5, seed=0)
    assert res.settings["space"] == "ofa/pruned"
    truncation_evolution(pruned, fitness, [c], population_size=20, generations=2, seed=0)
    random_search(pruned, fitness, [c], n_calls=60, seed=0)
    assert len(seen) > 150 and all(pruned.contains(a) for a in seen)
    assert any(pruned.bucket_of(a) >= 1 for a in seen)          # the kept choices were tested, not avoided
    with pytest.raises(SearchError, match="needs sample"):
        regularized_evolution(object(), toy_fitness)
    comp = get_space("compofa")
    pruned_comp = PrunedSpace(comp, CFG, SIZE, space_buckets(comp, CFG, SIZE), [{}] * 5)
    assert [g.name for g in genes(pruned_comp)][3:7] == ["dw1", "dw2", "dw3", "dw4"]   # the base's coupling


# --- truncation evolution and random search --------------------------------------------------
def test_truncation_parents_are_the_top_quarter_and_children_split_half_half(monkeypatch):
    made = {"mutation": [], "crossover": []}
    real_mut, real_cx = truncation_module.resample_mutate, truncation_module.crossover

    def spy_mut(parent, *a, **k):
        child = real_mut(parent, *a, **k)
        made["mutation"].append((parent, child))
        return child

    def spy_cx(x, y, *a, **k):
        child = real_cx(x, y, *a, **k)
        made["crossover"].append((x, y, child))
        return child

    monkeypatch.setattr(truncation_module, "resample_mutate", spy_mut)
    monkeypatch.setattr(truncation_module, "crossover", spy_cx)
    c = flops_constraint(budget(0.5), CFG, SIZE)
    te = TruncationEvolution(OFA, toy_fitness, [c], population_size=40, seed=4)
    te.initialize()
    gl = genes(OFA)
    for _ in range(3):
        pop = list(te.population)
        made["mutation"].clear()
        made["crossover"].clear()
        parents, kids, kinds = te.step()
        assert len(parents) == 10                                            # 25 % of 40
        assert sorted(v for _, v in parents) == sorted(sorted((v for _, v in pop), reverse=True)[:10])
        assert kinds.count("mutation") == 20 and kinds.count("crossover") == 20
        assert len(made["mutation"]) == 20 and len(made["crossover"]) == 20
        parent_archs = {a for a, _ in parents}
        for p, child in made["mutation"]:
            assert p in parent_archs
        for x, y, child in made["crossover"]:
            assert x in parent_archs and y in parent_archs
            for g in gl:
                assert g.value(child) in (g.value(x), g.value(y))                 # each gene from a parent
        assert kids == [ch for _, ch in made["mutation"]] + [ch for *_, ch in made["crossover"]]
        assert len(te.population) == 10 + 40
        assert all(c.value(a) <= c.limit for a in kids)


def test_random_search_counts_distinct_calls_and_stops_when_the_space_runs_out():
    calls = []

    def fitness(archs):
        calls.append(len(archs))
        return toy_fitness(archs)

    res = random_search(OFA, fitness, n_calls=300, seed=0, batch_size=64)
    assert res.calls == 300 == sum(calls) and max(calls) <= 64
    tiny = make_space(depths=(0,), widths=(0.65, 1.0), expands=(0.2,), stem_depths=(0, 2))
    assert tiny.size() == 2 * 2 * 2 * 2 ** 4
    seen = []
    res = random_search(tiny, lambda a: (seen.extend(a), toy_fitness(a))[1], n_calls=1000, seed=0, max_draws=3000)
    assert res.calls == len(seen) == len(set(seen)) == tiny.size()          # never more than the space holds
    assert res.settings["draws"] == 3000


def test_evaluator_memo_and_budget():
    n = []
    ev = Evaluator(lambda archs: (n.append(len(archs)), np.arange(len(archs), dtype=float))[1], max_calls=3)
    a, b, c, d = (OFA.sample(random.Random(i)) for i in range(4))
    np.testing.assert_array_equal(ev([a, b, a]), [0.0, 1.0, 0.0])
    assert ev.calls == 2 and ev.requests == 3 and n == [2]
    assert ev.within_budget([a, c, b, d, c]) == [a, c, b]      # d would be the 4th distinct call
    with pytest.raises(SearchError, match="exceed the remaining budget"):
        ev([c, d])
    ev([a, c])
    assert ev.exhausted and n == [2, 1] and ev.best() == (b, 1.0)
    np.testing.assert_array_equal(ev.best_so_far(), [0.0, 1.0, 1.0])


def test_path_filter_fitness_scores_each_path_in_its_own_flops_bucket():
    from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig
    from nnabla_nas_detofa.path_filter.model import default_vocabulary
    from nnabla_nas_detofa.space import space_buckets
    buckets = space_buckets(OFA, CFG, SIZE)
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=buckets, supernet=CFG, input_size=SIZE),
                     seed=0)
    archs = [OFA.sample(random.Random(i)) for i in range(40)]
    fit = path_filter_fitness(flt)
    flops = [mflops(a, CFG, SIZE) for a in archs]
    np.testing.assert_allclose(fit(archs), flt.logits(archs, bucket=buckets.indices(flops)), rtol=1e-12)
    # the logit ranks as the score does
    sig = 1.0 / (1.0 + np.exp(-fit(archs)))
    np.testing.assert_allclose(sig, flt.score(archs, bucket=buckets.indices(flops)), rtol=1e-12)
    assert len(set(buckets.indices(flops))) > 1
    # the same filter asked for another bucket scores differently: the bucket matters
    assert not np.allclose(fit(archs), flt.logits(archs, bucket=[0] * len(archs)))
    fixed = path_filter_fitness(flt, bucket=2)
    np.testing.assert_allclose(fixed(archs), flt.logits(archs, bucket=[2] * len(archs)), rtol=1e-12)
    with pytest.raises(SearchError, match="bucket=5 is not a bucket index"):
        path_filter_fitness(flt, bucket=5)
    with pytest.raises(SearchError, match="trained at input size 64, not 128"):
        path_filter_fitness(flt, input_size=128)
    with pytest.raises(SearchError, match="trained for supernet settings"):
        path_filter_fitness(flt, cfg=SupernetConfig())
    res = regularized_evolution(OFA, fit, [flops_constraint(budget(0.3), CFG, SIZE)], population_size=20,
                                sample_size=5, generations=3, seed=0)
    assert res.best_fitness == pytest.approx(flt.logits([res.best_arch])[0], rel=1e-6)  # float32, other batch


def test_path_filter_fitness_tells_apart_paths_whose_scores_round_to_one():
    """Confident filters (large logits) give sigmoid scores of exactly 1.0 for many paths; the
    fitness is the logit, so the search still ranks them."""
    class Confident:
        config = None

        def score(self, archs, bucket=None, flops=None, batch_size=256):
            return 1.0 / (1.0 + np.exp(-self.logits(archs, bucket=bucket)))

        def logits(self, archs, bucket=None, flops=None, batch_size=256):
            return np.array([40.0 + sum(a.to_dict()["d"]) for a in archs])

    archs = [OFA.sample(random.Random(i)) for i in range(20)]
    flt = Confident()
    assert len(set(flt.score(archs, bucket=[0] * 20))) == 1          # all exactly 1.0
    fit = path_filter_fitness(flt, CFG, SIZE, bucket=0)
    assert len(set(fit(archs))) > 1
