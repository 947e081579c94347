"""The three operation-pruning strategies of DetOFA §3.2.

* ``"flops"``: per bucket, prune ``r_op`` of the operations at random (FLOPs-aware only).
* ``"flops_score_bucket"`` ("FLOPs & score (per bucket)"): per bucket, prune the ``r_op`` with
  the lowest score in that bucket.
* ``"flops_score_all"`` ("FLOPs & score (all)", the paper's choice with r_op1 = 0.1, r_op2 = 0.3):
  prune from every bucket the ``r_op1`` with the lowest score over all buckets (the mean of the
  per-bucket means), then, per bucket, ``r_op2`` of the operations still kept there, lowest
  score in that bucket first.

**Decisions.**
* Counts: a ratio r of N operations prunes round(r * N) (halves up). The N of a bucket are the
  operations present there (at least one of their paths lands in the bucket, i.e. n > 0 in the
  score table); the others cannot occur in that bucket, are not ranked there and stay kept
  (removing them would change no path of that bucket). For "all", stage 1 counts every operation
  present in some bucket; stage 2 counts, per bucket, those present there and still kept.
* Ties: equal scores keep the order of ``operations(space)`` (stable), so the result is a
  function of the scores (and, for "flops", of the seed).
* Guards: an operation is skipped (the next one in line is taken instead) when pruning it would
  leave its decision without a choice present in the bucket, or would leave the bucket without
  a path. The second is checked on witnesses: the paths drawn for the operation scores and, when
  none of them survives, fresh uniform draws from the bucket's pruned space (a few hundred
  candidates by ``CountingSampler``); a bucket where none is found counts as empty. Skipped
  operations are reported with the reason.
"""
import math
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..space import SearchSpace
from ..space.batch import FlopsTable, concat
from ..space.bucket_uniform import CountingSampler, generator
from .operations import Operation, PruningError, choices_of, restrict
from .scores import RESOLUTION, OperationScores, mean_over_buckets, uses

STRATEGIES = ("flops", "flops_score_bucket", "flops_score_all")
WITNESS_DRAWS = 512


def check_ratio(name: str, r) -> float:
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not (0.0 <= float(r) < 1.0) or math.isnan(r):
        raise PruningError(f"{name}={r!r}: a pruning ratio must be in [0, 1)")
    return float(r)


def n_pruned(r: float, n: int) -> int:
    return int(math.floor(r * n + 0.5))


def strategy_params(strategy: str, r_op=None, r_op1=None, r_op2=None) -> Dict[str, float]:
    """The checked ratios of ``strategy`` (PruningError for a wrong combination or range)."""
    if strategy not in STRATEGIES:
        raise PruningError(f"strategy={strategy!r}: expected one of {STRATEGIES}")
    if strategy == "flops_score_all":
        if r_op1 is None or r_op2 is None or r_op is not None:
            raise PruningError("strategy 'flops_score_all' takes r_op1 and r_op2 (paper: 0.1 and 0.3), not r_op")
        return {"r_op1": check_ratio("r_op1", r_op1), "r_op2": check_ratio("r_op2", r_op2)}
    if r_op is None or r_op1 is not None or r_op2 is not None:
        raise PruningError(f"strategy {strategy!r} takes r_op, not r_op1 / r_op2")
    return {"r_op": check_ratio("r_op", r_op)}


@dataclass
class PruneResult:
    """``kept[b]``: decision -> kept choices in bucket b (every decision); ``pruned[b]``: the
    operations pruned in bucket b in the order they were taken (for "all", stage 1 first);
    ``pruned_all``: the stage-1 operations of "all"; ``skipped[b]``: (operation, reason)."""

    strategy: str
    params: Dict
    kept: List[Dict[str, Tuple]]
    pruned: List[List[Operation]]
    pruned_all: List[Operation] = field(default_factory=list)
    skipped: List[List[Tuple[Operation, str]]] = field(default_factory=list)

    def to_dict(self) -> Dict:
        return {"strategy": self.strategy, **self.params,
                "pruned": [[o.to_dict() for o in p] for p in self.pruned],
                "pruned_all": [o.to_dict() for o in self.pruned_all],
                "skipped": [[{**o.to_dict(), "reason": why} for o, why in s] for s in self.skipped]}


class _State:
    """Kept choices per bucket and the witnesses proving each bucket non-empty."""

    def __init__(self, scores: OperationScores, table: FlopsTable, gen, resolution: int):
        self.scores, self.table, self.gen, self.resolution = scores, table, gen, resolution
        self.space: SearchSpace = scores.space
        nb = scores.buckets.n
        full = choices_of(self.space)
        self.kept = [{d: list(v) for d, v in full.items()} for _ in range(nb)]
        self.wit = [scores.witnesses[b] if scores.witnesses else None for b in range(nb)]
        self.alive = [np.ones(len(w), bool) if w is not None else np.zeros(0, bool) for w in self.wit]

    def decision_ok(self, op: Operation, b: int) -> bool:
        left = [c for c in self.kept[b][op.decision] if c != op.choice]
        if not left:
            return False
        present = [c for c in self.kept[b][op.decision] if self.scores.present(Operation(op.decision, c), b)]
        if op.choice in present:
            return any(c != op.choice for c in present)
        return True

    def survivors(self, op: Operation, b: int) -> np.ndarray:
        w = self.wit[b]
        if w is None or not len(w):
            return np.zeros(0, bool)
        return self.alive[b] & ~uses(w, op)

    def find_witness(self, op: Operation, b: int):
        """Fresh paths of bucket b's space with ``op`` pruned too, or None when none is found."""
        kept = {d: [c for c in v if not (d == op.decision and c == op.choice)] for d, v in self.kept[b].items()}
        sub = restrict(self.space, kept)
        cs = CountingSampler(sub, self.table, self.scores.buckets, self.resolution)
        if cs.superset_size(b) == 0:
            return None
        archs, _, _ = cs.sample(self.gen, b, 64, WITNESS_DRAWS)
        return archs if len(archs) else None

    def try_prune(self, ops_b: List[Tuple[Operation, int]]) -> Optional[str]:
        """Prune each (op, bucket) pair, all or none; None on success, else the reason."""
        for op, b in ops_b:
            if not self.decision_ok(op, b):
                return f"its decision would keep no choice present in bucket {b}"
        plan = []
        for op, b in ops_b:
            surv = self.survivors(op, b)
            if surv.any():
                plan.append((b, surv, None))
                continue
            fresh = self.find_witness(op, b)
            if fresh is None:
                return f"bucket {b} would hold no path"
            plan.append((b, surv, fresh))
        for (op, b), (_, surv, fresh) in zip(ops_b, plan):
            self.kept[b][op.decision] = [c for c in self.kept[b][op.decision] if c != op.choice]
            if fresh is not None:
                self.wit[b] = concat([self.wit[b].take(np.nonzero(surv)[0]), fresh]) if self.wit[b] is not None \
                    else fresh
                self.alive[b] = np.ones(len(self.wit[b]), bool)
            else:
                self.alive[b] = surv
        return None


def _greedy(state: _State, order: List[Operation], buckets: List[int], count: int,
            pruned: List[List[Operation]], skipped: List[List], done: Optional[List[Operation]] = None) -> None:
    taken = 0
    for op in order:
        if taken >= count:
            break
        why = state.try_prune([(op, b) for b in buckets])
        if why is None:
            taken += 1
            for b in buckets:
                pruned[b].append(op)
            if done is not None:
                done.append(op)
        else:
            for b in buckets:
                skipped[b].append((op, why))


def prune_operations(scores: OperationScores, strategy: str, r_op: Optional[float] = None,
                     r_op1: Optional[float] = None, r_op2: Optional[float] = None, rng=0,
                     table: Optional[FlopsTable] = None, resolution: int = RESOLUTION) -> PruneResult:
    """Choose the operations to prune per bucket (module doc). ``rng`` seeds the "flops" strategy's
    random choice and the witness draws; ``table``: the FlopsTable of the scores' supernet and
    input size (default: the one ``operation_scores`` used)."""
    params = strategy_params(strategy, r_op, r_op1, r_op2)
    table = table or scores.flops_table
    if table is None:
        raise PruningError("prune_operations needs the FlopsTable of the supernet the scores were computed for")
    pyrng = rng if isinstance(rng, random.Random) else random.Random(rng if isinstance(rng, int) else 0)
    state = _State(scores, table, generator(pyrng.getrandbits(63)), resolution)
    nb = scores.buckets.n
    pruned: List[List[Operation]] = [[] for _ in range(nb)]
    skipped: List[List] = [[] for _ in range(nb)]
    ops = scores.operations
    rank = {op: i for i, op in enumerate(ops)}
    pruned_all: List[Operation] = []

    def present(b, pool):
        return [op for op in pool if scores.present(op, b)]

    if strategy == "flops":
        for b in range(nb):
            pool = present(b, ops)
            order = list(pool)
            pyrng.shuffle(order)
            _greedy(state, order, [b], n_pruned(params["r_op"], len(pool)), pruned, skipped)
    elif strategy == "flops_score_bucket":
        for b in range(nb):
            pool = present(b, ops)
            order = sorted(pool, key=lambda o: (scores.row(o, b).score, rank[o]))
            _greedy(state, order, [b], n_pruned(params["r_op"], len(pool)), pruned, skipped)
    else:
        pool = [op for op in ops if any(scores.present(op, b) for b in range(nb))]
        glob = {op: mean_over_buckets(scores, op) for op in pool}
        order = sorted(pool, key=lambda o: (glob[o], rank[o]))
        _greedy(state, order, list(range(nb)), n_pruned(params["r_op1"], len(pool)), pruned, skipped, pruned_all)
        gone = set(pruned_all)
        for b in range(nb):
            rest = [op for op in present(b, ops) if op not in gone]
            order = sorted(rest, key=lambda o: (scores.row(o, b).score, rank[o]))
            _greedy(state, order, [b], n_pruned(params["r_op2"], len(rest)), pruned, skipped)
    kept = [{d: tuple(v) for d, v in k.items()} for k in state.kept]
    return PruneResult(strategy, params, kept, pruned, pruned_all, skipped)
