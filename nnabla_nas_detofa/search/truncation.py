"""once-for-all's evolution (``EvolutionFinder``), a baseline: truncation selection.

Each generation keeps the best ``parent_ratio`` (25 %) of the population as parents and makes P
children from them: ``mutation_ratio`` (50 %) by mutation (every decision re-drawn with
probability ``mutate_prob`` = 0.1) of a random parent, the rest by uniform crossover of two
random parents, each re-drawn until feasible; the next population is parents + children.
"""
import random
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..space.arch import Arch
from .constraints import Constraint, Feasibility, SearchError
from .fitness import Evaluator, Fitness
from .operators import DEFAULT_MAX_TRIES, searchable, crossover, genes, resample_mutate, sample_feasible
from .regularized import _positive_int
from .result import SearchResult, make_result


class TruncationEvolution:
    name = "truncation_evolution"

    def __init__(self, space, fitness: Fitness, constraints: Sequence[Constraint] = (), population_size: int = 100,
                 generations: int = 500, parent_ratio: float = 0.25, mutation_ratio: float = 0.5,
                 mutate_prob: float = 0.1, max_calls: Optional[int] = None, seed: int = 0, memo: bool = True,
                 metrics: Optional[Dict[str, Callable]] = None, max_tries: int = DEFAULT_MAX_TRIES):
        self.P = _positive_int("population_size", population_size, 2)
        self.generations = _positive_int("generations", generations, 0)
        for name, v in (("parent_ratio", parent_ratio), ("mutation_ratio", mutation_ratio),
                        ("mutate_prob", mutate_prob)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise SearchError(f"{name}={v!r}: expected a number in [0, 1]")
        self.n_parents = max(1, int(round(parent_ratio * self.P)))
        self.n_mutations = int(round(mutation_ratio * self.P))
        self.parent_ratio, self.mutation_ratio, self.mutate_prob = parent_ratio, mutation_ratio, mutate_prob
        if max_calls is not None and _positive_int("max_calls", max_calls) < self.P:
            raise SearchError(f"max_calls={max_calls} cannot score the initial population of {self.P}")
        space = searchable(space)
        self.space, self.seed, self.metrics, self.max_tries = space, seed, metrics, max_tries
        self.rng = random.Random(seed)
        self.feasibility = Feasibility(space, constraints)
        self.evaluator = Evaluator(fitness, max_calls=max_calls, memo=memo)
        self.genes = genes(space)
        self.population: List[Tuple[Arch, float]] = []
        self.generation = 0
        self.history: List = []

    def initialize(self) -> None:
        archs = sample_feasible(self.space, self.feasibility, self.rng, self.P,
                                max_tries=max(self.max_tries, 100 * self.P))
        self.population = list(zip(archs, (float(v) for v in self.evaluator(archs))))
        self.history.append((self.evaluator.calls, self.evaluator.best_value))

    def parents(self) -> List[Tuple[Arch, float]]:
        """The best ``n_parents`` of the population (stable: ties keep population order)."""
        return sorted(self.population, key=lambda m: -m[1])[:self.n_parents]

    def step(self) -> Tuple[List, List[Arch], List[str]]:
        """One generation: (parents, children, how each child was made: 'mutation' / 'crossover').
        Children beyond the call budget are dropped."""
        parents = self.parents()
        kids, kinds = [], []
        for _ in range(self.n_mutations):
            p = parents[self.rng.randrange(len(parents))][0]
            kids.append(resample_mutate(p, self.genes, self.feasibility, self.rng, self.mutate_prob, self.max_tries))
            kinds.append("mutation")
        for _ in range(self.P - self.n_mutations):
            a = parents[self.rng.randrange(len(parents))][0]
            b = parents[self.rng.randrange(len(parents))][0]
            kids.append(crossover(a, b, self.genes, self.feasibility, self.rng, self.max_tries))
            kinds.append("crossover")
        kids = self.evaluator.within_budget(kids)
        kinds = kinds[:len(kids)]
        values = self.evaluator(kids) if kids else []
        self.population = list(parents) + list(zip(kids, (float(v) for v in values)))
        self.generation += 1
        if kids:
            self.history.append((self.evaluator.calls, self.evaluator.best_value))
        return parents, kids, kinds

    def run(self) -> SearchResult:
        t = time.perf_counter()
        if not self.population:
            self.initialize()
        while self.generation < self.generations and not self.evaluator.exhausted:
            _, kids, _ = self.step()
            if not kids:
                break
        return make_result(self.name, self.space, self.evaluator, self.feasibility, self.metrics,
                           time.perf_counter() - t, self.history, self.settings(), self.population)

    def settings(self) -> Dict:
        return {"population_size": self.P, "generations": self.generations, "parent_ratio": self.parent_ratio,
                "mutation_ratio": self.mutation_ratio, "mutate_prob": self.mutate_prob, "seed": self.seed,
                "max_calls": self.evaluator.max_calls, "generations_run": self.generation}


def truncation_evolution(space, fitness: Fitness, constraints: Sequence[Constraint] = (), **kw) -> SearchResult:
    """``TruncationEvolution(space, fitness, constraints, **kw).run()``."""
    return TruncationEvolution(space, fitness, constraints, **kw).run()
