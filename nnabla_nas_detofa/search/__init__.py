"""Search (DetOFA §3.3): arch dicts and numbers in, arch dicts out (numpy and ``space`` only).

* ``regularized_evolution`` (Real et al. 2019), the baselines ``random_search`` and
  ``truncation_evolution`` (once-for-all's finder), on any space with ``sample``/``contains``;
* fitness: any ``fitness(list_of_archs) -> array`` (higher = better), memoised and counted by
  ``Evaluator``; ``path_filter_fitness`` adapts a path filter;
* constraints: ``flops_constraint``, ``params_constraint``, ``latency_constraint`` (a
  ``LatencyTable`` measured by ``nets.latency`` / ``measure-latency``) or any ``Constraint``.
"""
from .constraints import (Constraint, Feasibility, SearchError, flops_constraint, latency_constraint,
                          params_constraint)
from .costs import AdditiveCost, MissingLayer
from .fitness import Evaluator, path_filter_fitness
from .latency import LatencyTable, LatencyTableError, entries_from_times
from .operators import (Gene, SampledSpace, crossover, differing_genes, genes, mutate, resample_mutate,
                        sample_feasible, searchable)
from .random_search import random_search
from .regularized import Member, RegularizedEvolution, regularized_evolution
from .result import SearchResult
from .synthetic import TargetFitness
from .truncation import TruncationEvolution, truncation_evolution

__all__ = [n for n in dir() if not n.startswith("_")]
