"""Random search, the baseline every search is compared with at the same number of fitness calls."""
import random
import time
from typing import Callable, Dict, Optional, Sequence

from .constraints import Constraint, Feasibility, SearchError
from .fitness import Evaluator, Fitness
from .operators import sample_feasible, searchable
from .regularized import _positive_int
from .result import SearchResult, make_result


def random_search(space, fitness: Fitness, constraints: Sequence[Constraint] = (), n_calls: int = 1000,
                  seed: int = 0, batch_size: int = 256, mode: Optional[str] = None, memo: bool = True,
                  metrics: Optional[Dict[str, Callable]] = None, max_draws: Optional[int] = None) -> SearchResult:
    """Score feasible paths of ``space.sample(rng[, mode])`` until ``n_calls`` distinct paths are
    scored (a repeated path costs no call), in batches of ``batch_size``. Stops early after
    ``max_draws`` feasible draws (default 20 x ``n_calls``: a space smaller than the budget)."""
    _positive_int("n_calls", n_calls)
    _positive_int("batch_size", batch_size)
    max_draws = max_draws or 20 * n_calls
    space = searchable(space)
    rng = random.Random(seed)
    feas = Feasibility(space, constraints)
    ev = Evaluator(fitness, max_calls=n_calls, memo=memo)
    t = time.perf_counter()
    history, drawn = [], 0
    while not ev.exhausted and drawn < max_draws:
        n = int(min(batch_size, ev.remaining, max_draws - drawn))
        archs = ev.within_budget(sample_feasible(space, feas, rng, n, mode=mode))
        drawn += n
        if ev.new_count(archs):
            ev(archs)
            history.append((ev.calls, ev.best_value))
    if not ev.calls:
        raise SearchError("random search: no path was scored")
    settings = {"n_calls": n_calls, "seed": seed, "batch_size": batch_size, "mode": mode, "draws": drawn}
    return make_result("random_search", space, ev, feas, metrics, time.perf_counter() - t, history, settings)
