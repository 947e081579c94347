"""Operation scores (DetOFA §3.2): the mean path score of an operation, per FLOPs bucket.

**Decision: the score of operation o in bucket b is the mean filter score over paths drawn
uniformly from {paths of the space that make choice o and land in bucket b}.** This is the
paper's "mean score over n random paths with that choice inserted, counted in the bucket the
path lands in after the insertion" made exact: inserting the choice into a uniform path and
keeping the ones that land in b draws exactly this conditional distribution, but would almost
never reach the sparse buckets (1.6e-5 of the OFA space lies in the top one at full width). The
cell is sampled directly, uniformly, by ``CountingSampler`` (counting over quantised FLOPs, then
rejection on exact FLOPs), so every (operation, bucket) cell gets its n paths whenever it holds
any. A cell with n = 0 is not ranked in that bucket; ``possible`` False proves it empty (no path
can reach the bucket even on quantised FLOPs, e.g. stage 4 at depth 0 in the top bucket), while
``possible`` True with n = 0 means none of ``max_draws`` candidates landed there. (The walker of
``space.bucket_sampling`` also reaches every bucket, but its paths are not uniform inside a
bucket, so its mean would depend on the walk.)

The result is a plain table, one row per (decision, choice, bucket): mean score, n, standard
deviation, candidates drawn: Fig. 7 of the paper (operation scores per layer and choice, per
bucket) is a plot of it. The paths drawn are kept per bucket: the strategies use them as
witnesses that a pruned bucket still holds paths.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..space import EXPAND_CHOICES, Buckets, SearchSpace, SupernetConfig, space_buckets
from ..space.batch import ArchArrays, FlopsTable, concat, empty_arrays
from ..space.bucket_uniform import CountingSampler, generator
from .operations import Operation, PruningError, operation_space, operations
from .scorer import Scorer

RESOLUTION = 4096


@dataclass
class ScoreRow:
    decision: str
    choice: object
    bucket: int
    score: float          # mean filter score (NaN when n == 0)
    n: int                # paths scored
    std: float            # their standard deviation (NaN when n < 2)
    drawn: int            # candidates the sampler drew to find them
    possible: bool        # False: no path of the space makes this choice in this bucket (exact)

    @property
    def op(self) -> Operation:
        return Operation(self.decision, self.choice)

    def to_dict(self) -> Dict:
        c = list(self.choice) if isinstance(self.choice, tuple) else self.choice
        return {"decision": self.decision, "choice": c, "bucket": self.bucket,
                "score": None if math.isnan(self.score) else self.score, "n": self.n,
                "std": None if math.isnan(self.std) else self.std, "drawn": self.drawn, "possible": self.possible}

    @classmethod
    def from_dict(cls, o: Dict) -> "ScoreRow":
        c = tuple(o["choice"]) if isinstance(o["choice"], list) else o["choice"]
        nan = float("nan")
        return cls(str(o["decision"]), c, int(o["bucket"]), nan if o["score"] is None else float(o["score"]),
                   int(o["n"]), nan if o["std"] is None else float(o["std"]), int(o["drawn"]), bool(o["possible"]))


@dataclass
class OperationScores:
    """Scores of every operation of ``space`` in every bucket, and the paths drawn per bucket."""

    space: SearchSpace
    buckets: Buckets
    operations: List[Operation]
    rows: List[ScoreRow]
    n_requested: int
    witnesses: List[ArchArrays] = field(default_factory=list)
    flops_table: Optional[FlopsTable] = None      # FLOPs of the supernet / input size scored

    def __post_init__(self):
        self._index = {(r.decision, r.choice, r.bucket): r for r in self.rows}

    def row(self, op: Operation, b: int) -> ScoreRow:
        return self._index[(op.decision, op.choice, b)]

    def present(self, op: Operation, b: int) -> bool:
        return self.row(op, b).n > 0

    def table(self) -> List[Dict]:
        """Rows as plain dicts: decision, choice, bucket, score, n, std, drawn, possible."""
        return [r.to_dict() for r in self.rows]

    def short_cells(self) -> List[ScoreRow]:
        """Cells that hold paths (possible) but got fewer than the n asked."""
        return [r for r in self.rows if r.possible and r.n < self.n_requested]


def operation_scores(space: SearchSpace, cfg: SupernetConfig, input_size: int, scorer, n: int = 100,
                     buckets: Optional[Buckets] = None, rng=0, max_draws: Optional[int] = None,
                     resolution: int = RESOLUTION, table: Optional[FlopsTable] = None) -> OperationScores:
    """Score every operation of ``space`` in every bucket (module doc).

    Args:
        scorer: ``score(archs, flops, bucket)`` or a PathFilter (see ``scorer.Scorer``).
        n: paths per (operation, bucket) cell (paper: 100).
        buckets: default ``space_buckets(space, cfg, input_size)`` (5 equal-width buckets).
        rng: ``random.Random``, int seed or numpy Generator: the result is a function of it.
        max_draws: candidates per cell at most (default ``50 * n``); a cell short of ``n`` after
            that is reported with the n it got.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PruningError(f"n={n!r}: expected a positive number of paths per cell")
    sc = Scorer(scorer)
    buckets = buckets or space_buckets(space, cfg, input_size)
    sc.check_buckets(buckets)
    table = table or FlopsTable(cfg, input_size)
    gen = generator(rng)
    max_draws = 50 * n if max_draws is None else int(max_draws)
    ops = operations(space)
    cells = []            # (op, bucket, archs, flops, drawn, possible)
    for op in ops:
        sub = operation_space(space, op)
        cs = CountingSampler(sub, table, buckets, resolution)
        got = cs.sample_buckets(gen, range(buckets.n), n, max_draws)
        for b, (archs, flops, drawn) in enumerate(got):
            cells.append((op, b, archs, flops, drawn, cs.superset_size(b) > 0))
    allv = concat([c[2] for c in cells]) if cells else empty_arrays()
    allf = np.concatenate([c[3] for c in cells]) if cells else np.zeros(0)
    allb = np.concatenate([np.full(len(c[3]), c[1], np.int64) for c in cells]) if cells else np.zeros(0, np.int64)
    scores = sc(allv.to_archs(), allf, allb) if len(allf) else np.zeros(0)
    rows, pos = [], 0
    for op, b, archs, flops, drawn, possible in cells:
        s = scores[pos:pos + len(flops)]
        pos += len(flops)
        rows.append(ScoreRow(op.decision, op.choice, b, float(s.mean()) if len(s) else float("nan"), len(s),
                             float(s.std(ddof=1)) if len(s) > 1 else float("nan"), int(drawn), bool(possible)))
    wit = [concat([c[2] for c in cells if c[1] == b] or [empty_arrays()]) for b in range(buckets.n)]
    return OperationScores(space, buckets, ops, rows, n, wit, table)


def uses(arrays: ArchArrays, op: Operation) -> np.ndarray:
    """(N,) bool: which of the paths make the choice ``op`` (active decisions only)."""
    kind = op.decision.rstrip("0123456789")
    i = int(op.decision[len(kind):])
    if kind == "d":
        return arrays.d[:, i] == op.choice
    if kind == "w":
        return arrays.w[:, i] == op.choice
    if kind == "dw":
        return (arrays.d[:, i] == op.choice[0]) & (arrays.w[:, i + 1] == op.choice[1])
    return (arrays.e[:, i] == EXPAND_CHOICES.index(op.choice)) & arrays.active()[:, i]


def mean_over_buckets(scores: OperationScores, op: Operation) -> float:
    """The operation's score over all buckets: the mean of its per-bucket means, over the buckets
    where it has paths (each bucket weighs the same, as each FLOPs budget matters the same)."""
    vals = [scores.row(op, b).score for b in range(scores.buckets.n) if scores.row(op, b).n > 0]
    return float(np.mean(vals)) if vals else float("nan")
