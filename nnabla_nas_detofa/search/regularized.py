"""Regularized (aging) evolution, Real et al. 2019, under constraints.

A population of P paths, initially random feasible paths of the space. Each cycle: sample S
members at random (tournament), mutate the best of them into a child (1..k decisions changed,
re-drawn until the child is in the space and meets every constraint; a parent with no feasible
neighbour gives way to a fresh feasible path), score it, append it, and
remove the *oldest* member, whatever its fitness. Defaults P = 100, S = 25 (NNI's), 500
generations (DetOFA §3.3), k = 2 (one or two decisions, uniformly). **Decision:** with k = 1
(Real et al. change one thing) the search stalled in a local optimum of one FLOPs bucket (a
two-sided budget blocks many single moves): path-filter fitness 0.96278 after 500 generations
vs 0.96673 with k = 2 and with once-for-all's evolution; on the synthetic loss of
``path_filter.synthetic`` k = 1 reached the best path in 2 of 4 runs, k = 2 in 3, k = 3 in 4,
at the price of more distinct calls (with a separable fitness, ``search.synthetic``, k = 1 needs
~480 calls to the optimum, k = 2 ~760, k = 3 ~820).

A *generation* is P children (the population turns over once), so 500 generations cost
P + 500 P fitness calls at most (memoised paths cost nothing), the same budget as once-for-all's
evolution with 500 generations of P children. ``batch_size`` children are made from the
population as it stands and scored in one fitness call, then enter one by one, each removing the
oldest member: Real et al.'s asynchronous workers, ``batch_size`` of them (default 25, at most
P; 1 = strictly sequential); the numpy path filter is far faster scoring batches.
"""
import random
import time
from collections import deque
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

from ..space.arch import Arch
from .constraints import Constraint, Feasibility, SearchError
from .fitness import Evaluator, Fitness
from .operators import DEFAULT_MAX_TRIES, searchable, genes, mutate, pick_distinct, sample_feasible
from .result import SearchResult, make_result


DEFAULT_BATCH = 25  # children in flight (scored in one fitness call); capped at the population size


class Member(NamedTuple):
    arch: Arch
    fitness: float
    born: int   # index of creation: smaller = older


def _fitness(m: Member) -> float:
    return m.fitness


def _positive_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise SearchError(f"{name}={v!r}: expected an integer >= {lo}")
    return v


class RegularizedEvolution:
    """Step by step: ``initialize()``, then ``step()`` per batch of children; ``run()`` does it all."""

    name = "regularized_evolution"

    def __init__(self, space, fitness: Fitness, constraints: Sequence[Constraint] = (), population_size: int = 100,
                 sample_size: int = 25, generations: int = 500, batch_size: Optional[int] = None, max_changes: int = 2,
                 max_calls: Optional[int] = None, seed: int = 0, memo: bool = True,
                 metrics: Optional[Dict[str, Callable]] = None, max_tries: int = DEFAULT_MAX_TRIES):
        self.P = _positive_int("population_size", population_size, 2)
        self.S = _positive_int("sample_size", sample_size)
        if self.S > self.P:
            raise SearchError(f"sample_size={sample_size} exceeds population_size={population_size}")
        self.generations = _positive_int("generations", generations, 0)
        self.batch_size = _positive_int("batch_size", min(DEFAULT_BATCH, self.P) if batch_size is None else batch_size)
        if self.batch_size > self.P:
            raise SearchError(f"batch_size={batch_size} exceeds population_size={population_size}")
        self.max_changes = _positive_int("max_changes", max_changes)
        if max_calls is not None and _positive_int("max_calls", max_calls) < self.P:
            raise SearchError(f"max_calls={max_calls} cannot score the initial population of {self.P}")
        space = searchable(space)
        self.space, self.seed, self.metrics, self.max_tries = space, seed, metrics, max_tries
        self.rng = random.Random(seed)
        self.feasibility = Feasibility(space, constraints)
        self.evaluator = Evaluator(fitness, max_calls=max_calls, memo=memo)
        self.genes = genes(space)
        self.population: deque = deque()
        self.born = 0
        self.children = 0
        self.fresh_children = 0
        self._isolated: Dict[Arch, str] = {}   # parents without feasible neighbours: "isolated" / "alone"
        self.history: List = []
        self.last_tournaments: List = []   # (sampled members, winner) of the last step

    def _add(self, archs: List[Arch], values) -> None:
        for a, v in zip(archs, values):
            self.population.append(Member(a, float(v), self.born))
            self.born += 1

    def initialize(self) -> None:
        archs = sample_feasible(self.space, self.feasibility, self.rng, self.P,
                                max_tries=max(self.max_tries, 100 * self.P))
        self._add(archs, self.evaluator(archs))
        self.history.append((self.evaluator.calls, self.evaluator.best_value))

    def tournament(self) -> Member:
        pop = self.population
        sample = [pop[i] for i in pick_distinct(self.rng, len(pop), self.S)]
        winner = max(sample, key=_fitness)  # ties: the first sampled
        self.last_tournaments.append((sample, winner))
        return winner

    def _child(self, parent: Arch) -> Arch:
        """A mutation of ``parent``; when none of its 1..k-gene neighbours is feasible (a narrow FLOPs
        window in a pruned space can isolate a path), a fresh feasible path of the space, drawn as the
        initial population's, takes the child's place (counted in ``fresh_children``); when ten such
        draws give the parent again (its feasible region holds little else), the child repeats the
        parent (memoised: no fitness call) and the population ages on. Both findings are kept per
        parent (``_isolated``), so a parent that wins many tournaments is not re-tried each time."""
        state = self._isolated.get(parent)
        if state is None:
            try:
                return mutate(parent, self.genes, self.feasibility, self.rng, self.max_changes, self.max_tries)
            except SearchError:
                if not any(len(g.options) > 1 for g in self.genes):
                    raise   # no decision to mutate: a wrong space, not an isolated parent
        self.fresh_children += 1
        if state == "alone":
            return parent
        self._isolated[parent] = "isolated"
        for _ in range(10):   # one draw at a time: the first that is not the parent ends it
            fresh = sample_feasible(self.space, self.feasibility, self.rng, 1, max_tries=self.max_tries)[0]
            if fresh != parent:
                return fresh
        self._isolated[parent] = "alone"
        return parent

    def step(self, n: Optional[int] = None) -> List[Member]:
        """Make, score and insert ``n`` (default ``batch_size``) children; returns them ([] when the
        call budget is spent)."""
        n = self.batch_size if n is None else n
        self.last_tournaments = []
        parents = [self.tournament() for _ in range(n)]
        kids = [self._child(p.arch) for p in parents]
        kids = self.evaluator.within_budget(kids)
        if not kids:
            return []
        values = self.evaluator(kids)
        start = self.born
        for a, v in zip(kids, values):
            self._add([a], [v])
            self.population.popleft()  # the oldest dies
        self.children += len(kids)
        self.history.append((self.evaluator.calls, self.evaluator.best_value))
        return [m for m in self.population if m.born >= start]

    def run(self) -> SearchResult:
        t = time.perf_counter()
        if not self.population:
            self.initialize()
        total = self.generations * self.P
        while self.children < total and not self.evaluator.exhausted:
            if not self.step(min(self.batch_size, total - self.children)):
                break
        return make_result(self.name, self.space, self.evaluator, self.feasibility, self.metrics,
                           time.perf_counter() - t, self.history, self.settings(),
                           [(m.arch, m.fitness) for m in self.population])

    def settings(self) -> Dict:
        return {"population_size": self.P, "sample_size": self.S, "generations": self.generations,
                "batch_size": self.batch_size, "max_changes": self.max_changes, "seed": self.seed,
                "max_calls": self.evaluator.max_calls, "children": self.children,
                "fresh_children": self.fresh_children}


def regularized_evolution(space, fitness: Fitness, constraints: Sequence[Constraint] = (), **kw) -> SearchResult:
    """``RegularizedEvolution(space, fitness, constraints, **kw).run()``."""
    return RegularizedEvolution(space, fitness, constraints, **kw).run()
