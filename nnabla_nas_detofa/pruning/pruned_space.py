"""The pruned space Ã, its exact uniform sampler, path-pruning thresholds, ``pruned_space.json``.

**Decision (DETOFA.md §4): a path belongs to Ã iff every choice it makes is kept for its own
FLOPs bucket**, its bucket being that of its FLOPs among the equal-width buckets of the space A
before pruning. Ã is the disjoint union over buckets b of T_b = {x in K_b : bucket(x) = b},
with K_b the product space of the choices kept in bucket b.

Sampling Ã uniformly (``PrunedSampler``): rejection from the joint proposal of ``uniform.py``
(bucket b with probability |P_b| / sum |P|, P_b the skeletons of K_b that can reach b, a path
uniform in P_b, accepted iff it lands in b): exactly uniform, with no estimated quantity, in
batches of candidates of which the first accepted is returned (the first success of a sequence
of independent trials, so batching changes nothing in the distribution). The bucket-weighting
scheme "pick b with probability |Ã_b| / |Ã| (estimated), then reject inside b" needs the same
expected number of candidates, sum_b |P_b| / |Ã|, and is only as exact as the estimate, so it
is not used. |Ã| itself is estimated per bucket with ``CountingSampler`` (|U_b| exact times the
acceptance measured on ``draws`` candidates, binomial standard error).

Path pruning (Algorithm 1 lines 10-13): delta_b = the ``r_path`` quantile (numpy's default,
linear interpolation) of the filter scores of ``n`` paths drawn uniformly from T_b; the sampler
re-draws while score < delta_b. The candidates Ã accepts are scored a few at a time and the
first with score >= delta_b is returned: uniform over {x in Ã : score(x) >= delta_bucket(x)}.
After ``max_scored`` failures in a row it stops with an error naming the bucket that rejected
most and each bucket's acceptance. The path filter costs per call (~10 ms here, its weights
gathered anew each call) and per path (~0.2-1.3 ms in a batch): one ``sample`` scores 2 paths,
then 8, ... (few calls); ``sample_steps`` draws a block of steps (one generator each) with one
filter call per round for the whole block, scoring 1 path per step, then 2, ... (1.5 paths per
step on average, the minimum being 1 / (1 - r_path) = 1.33).

Determinism: ``PrunedSampler.sample(rng)`` is a function of (pruned space, scorer, thresholds,
``batch``, the state of ``rng``) and nothing else: no state is kept between calls, and how the
candidates are grouped for scoring does not change which one is returned, so a trainer that
seeds one ``random.Random`` per global step draws the same path on every rank, after a resume,
and whether it calls ``sample`` per step or ``sample_steps`` per block (up to a scorer whose
float results would depend on the batch they are computed in).
"""
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import write_json_atomic
from ..reading import read_json
from ..space import (Arch, Buckets, ConfigError, SearchSpace, SpaceError, SupernetConfig, check_input_size, mflops,
                     space_buckets)
from ..space.batch import FlopsTable
from ..space.bucket_uniform import CountingSampler, generator
from .operations import PruningError, choices_of, decisions, restrict
from .scorer import Scorer
from .scores import RESOLUTION, OperationScores, ScoreRow, operation_scores
from .strategies import PruneResult, check_ratio, prune_operations, strategy_params
from .uniform import Proposal

FORMAT = "nnabla_nas_detofa.pruned_space"
FORMAT_VERSION = 1
# the supernet settings FLOPs depend on (a pruned space is refused for others)
FLOPS_KEYS = ("num_classes", "width_mult", "divisor", "neck_channels", "head_channels")


@dataclass
class PathThresholds:
    """delta_b per bucket, the ratio they come from, paths scored per bucket, and an optional
    ``scorer_id`` (e.g. the filter file and its SHA-256) naming the scorer they belong to."""

    r_path: float
    values: List[float]
    n: List[int]
    scorer_id: Optional[Dict] = None

    def to_dict(self) -> Dict:
        return {"r_path": self.r_path, "thresholds": list(self.values), "n": list(self.n), "scorer": self.scorer_id}


@dataclass
class SampledPath:
    """One draw: the path, its MFLOPs and bucket, its score (None without path pruning), and the
    work it took (candidates proposed, paths scored)."""

    arch: Arch
    flops: float
    bucket: int
    score: Optional[float]
    candidates: int
    scored: int

    def to_dict(self) -> Dict:
        out = {"arch": self.arch.to_dict(), "flops": self.flops, "bucket": self.bucket}
        if self.score is not None:
            out["score"] = self.score
        return out


class PrunedSpace:
    """Ã: the space ``space`` (A) with, per bucket b of ``buckets``, the kept choices ``kept[b]``
    (decision name -> choices, as ``operations.decisions``; decisions not named keep all)."""

    def __init__(self, space: SearchSpace, cfg: SupernetConfig, input_size: int, buckets: Buckets,
                 kept: Sequence[Dict[str, Sequence]], strategy: Optional[Dict] = None,
                 thresholds: Optional[PathThresholds] = None, size: Optional[Dict] = None,
                 scores: Optional[List[ScoreRow]] = None, resolution: int = RESOLUTION):
        self.space, self.cfg = space, cfg
        self.input_size = check_input_size(input_size)
        self.buckets = buckets
        if len(kept) != buckets.n:
            raise PruningError(f"{len(kept)} kept-choice sets for {buckets.n} buckets")
        full = choices_of(space)
        self.kept: List[Dict[str, Tuple]] = []
        self.kept_spaces: List[SearchSpace] = []
        for b, k in enumerate(kept):
            try:
                sub = restrict(space, k, name=f"{space.name}/pruned/b{b}")
            except PruningError as err:
                raise PruningError(f"bucket {b}: {err}") from None
            self.kept_spaces.append(sub)
            ch = choices_of(sub)
            self.kept.append({d: tuple(ch[d]) for d in full})
        self.strategy = strategy or {}
        self.thresholds = thresholds
        self.size_estimate = size
        self.scores = scores
        self.resolution = int(resolution)
        self._table: Optional[FlopsTable] = None
        self._proposal: Optional[Proposal] = None
        self._counting: Dict[int, CountingSampler] = {}
        if thresholds is not None and len(thresholds.values) != buckets.n:
            raise PruningError(f"{len(thresholds.values)} thresholds for {buckets.n} buckets")
        for b in range(buckets.n):
            if self.proposal().empty(b):
                lo, hi = buckets.bounds(b)
                raise PruningError(f"bucket {b} [{lo:.6g}, {hi:.6g}) MFLOPs is empty: no path of the choices kept "
                                   "there can reach it")

    # --- membership --------------------------------------------------------------------------
    @property
    def table(self) -> FlopsTable:
        if self._table is None:
            self._table = FlopsTable(self.cfg, self.input_size)
        return self._table

    def flops(self, arch) -> float:
        return mflops(arch, self.cfg, self.input_size)

    def bucket_of(self, arch) -> int:
        return self.buckets.index(self.flops(arch))

    def contains(self, arch) -> bool:
        """True iff ``arch`` is a path of A and every choice it makes is kept for its own bucket."""
        arch = Arch.from_dict(arch)
        return self.space.contains(arch) and self.kept_spaces[self.bucket_of(arch)].contains(arch)

    def kept_product_size(self, b: int) -> int:
        """|K_b|: paths of the product of the choices kept in bucket b (any FLOPs)."""
        return self.kept_spaces[b].size()

    # --- samplers ----------------------------------------------------------------------------
    def proposal(self) -> Proposal:
        if self._proposal is None:
            self._proposal = Proposal([(self.kept_spaces[b], b) for b in range(self.buckets.n)], self.table,
                                      self.buckets)
        return self._proposal

    def counting(self, b: int) -> CountingSampler:
        if b not in self._counting:
            self._counting[b] = CountingSampler(self.kept_spaces[b], self.table, self.buckets, self.resolution)
        return self._counting[b]

    def sample_bucket(self, rng, b: int, n: int, max_draws: Optional[int] = None):
        """``n`` independent paths uniform over T_b (Ã's paths in bucket b): (archs, flops)."""
        cs = self.counting(b)
        archs, flops, drawn = cs.sample(generator(rng), b, n, max_draws or 200 * n + 1000)
        if len(flops) < n:
            raise PruningError(f"bucket {b}: only {len(flops)} of {n} paths found in {drawn} draws: the bucket of "
                               "the pruned space is empty or nearly so")
        return archs, flops

    def sampler(self, scorer=None, thresholds: Optional[PathThresholds] = None, **kw) -> "PrunedSampler":
        """Uniform over Ã; with ``scorer``, path pruning with ``thresholds`` (default: the stored ones)."""
        return PrunedSampler(self, scorer, thresholds if thresholds is not None else
                             (self.thresholds if scorer is not None else None), **kw)

    # --- size --------------------------------------------------------------------------------
    def estimate_size(self, rng=0, draws: int = 4000) -> Dict:
        """|Ã| (and per bucket) estimated as |U_b| x acceptance on ``draws`` candidates, with
        standard errors; the exact |A| and |K_b|; the training sampler's acceptance."""
        gen = generator(rng)
        per, total, var = [], 0.0, 0.0
        for b in range(self.buckets.n):
            cs = self.counting(b)
            u = cs.superset_size(b)
            k = int(cs.draw(gen, b, draws).accepted.sum()) if u else 0
            if k == 0:
                raise PruningError(f"bucket {b}: no path of the pruned space lands in it ({draws} draws from its "
                                   f"{u} candidate paths): the bucket is empty")
            a = k / draws
            est, se = u * a, u * math.sqrt(a * (1 - a) / draws)
            per.append({"bucket": b, "kept_product": self.kept_product_size(b), "superset": u, "acceptance": a,
                        "estimate": est, "stderr": se, "proposal": self.proposal().proposal_size[b]})
            total += est
            var += se * se
        full = self.space.size()
        prop = self.proposal().total
        self.size_estimate = {"full": full, "estimate": total, "stderr": math.sqrt(var), "ratio": total / full,
                     "proposal": prop, "sampler_acceptance": total / prop, "draws": draws, "per_bucket": per}
        return self.size_estimate

    # --- settings ----------------------------------------------------------------------------
    def check_settings(self, cfg: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                       where: str = "pruned space") -> None:
        """Refuse use with other supernet settings that change FLOPs (``FLOPS_KEYS``; BN momentum
        and epsilon do not) or another input size: the buckets and FLOPs would mean other things."""
        mine = {k: v for k, v in self.cfg.to_dict().items() if k in FLOPS_KEYS}
        theirs = {k: v for k, v in (cfg.to_dict() if cfg is not None else {}).items() if k in FLOPS_KEYS}
        if cfg is not None and mine != theirs:
            diff = {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v}
            raise PruningError(f"{where}: made for other supernet settings ("
                               + ", ".join(f"{k} {a!r} in the file, {b!r} here" for k, (a, b) in diff.items()) + ")")
        if input_size is not None and int(input_size) != self.input_size:
            raise PruningError(f"{where}: made for input size {self.input_size}, not {input_size}")

    # --- files -------------------------------------------------------------------------------
    def to_dict(self) -> Dict:
        sp = self.space
        return {"format": FORMAT, "version": FORMAT_VERSION,
                "supernet": self.cfg.to_dict(), "input_size": self.input_size,
                "space": {**sp.to_dict(), "pairs": sorted({tuple(p) for ps in sp.pairs.values() for p in ps})},
                "buckets": {**self.buckets.to_dict(), "edges": self.buckets.edges},
                "strategy": self.strategy,
                "kept": [{d: [list(c) if isinstance(c, tuple) else c for c in v] for d, v in k.items()}
                         for k in self.kept],
                "size": self.size_estimate,
                "path_pruning": None if self.thresholds is None else self.thresholds.to_dict(),
                "operation_scores": None if self.scores is None else [r.to_dict() for r in self.scores]}

    def save(self, path: str) -> None:
        write_json_atomic(path, _plain(self.to_dict()), indent=1)

    @classmethod
    def load(cls, path: str, cfg: Optional[SupernetConfig] = None, input_size: Optional[int] = None) -> "PrunedSpace":
        """Read ``pruned_space.json``; ``cfg`` / ``input_size`` when given must be those it was made
        for. Every problem is one PruningError line naming the file and the key."""
        obj = read_json(path, PruningError, "pruned space file")
        out = from_dict(obj, path)
        out.check_settings(cfg, input_size, where=path)
        return out


def _plain(o):
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    return o


def _get(obj, key, where, types=None):
    if not isinstance(obj, dict) or key not in obj:
        raise PruningError(f"{where}: missing key '{key}'")
    v = obj[key]
    if types is not None and not isinstance(v, types):
        raise PruningError(f"{where}['{key}']: expected {types if isinstance(types, type) else types[0]}, "
                           f"got {type(v).__name__}")
    return v


def _space_from(obj, where) -> SearchSpace:
    name = _get(obj, "name", where, str)
    coupled = _get(obj, "coupled", where, bool)
    ch = _get(obj, "choices", where, dict)
    pairs = [tuple(p) for p in _get(obj, "pairs", where, list)]
    choices = {}
    for key, vals in ch.items():
        kind = key.rstrip("0123456789")
        if kind not in ("d", "w", "e") or not key[len(kind):].isdigit() or not isinstance(vals, list):
            raise PruningError(f"{where}['choices']['{key}']: not a decision with a list of choices")
        choices[(kind, int(key[len(kind):]))] = vals
    try:
        kw = {"pairs": pairs} if coupled else {}
        return SearchSpace(choices, coupled=coupled, name=name, **kw)
    except (SpaceError, TypeError) as err:
        raise PruningError(f"{where}: {err}") from None


def from_dict(obj, where: str = "pruned space") -> PrunedSpace:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise PruningError(f"{where}: not a pruned space file (expected \"format\": \"{FORMAT}\")")
    if obj.get("version") != FORMAT_VERSION:
        raise PruningError(f"{where}: version {obj.get('version')!r} not supported (expected {FORMAT_VERSION})")
    try:
        cfg = SupernetConfig.from_dict(_get(obj, "supernet", where, dict), f"{where}['supernet']")
    except ConfigError as err:
        raise PruningError(str(err)) from None
    size = _get(obj, "input_size", where, int)
    try:
        check_input_size(size, f"{where}['input_size']")
    except ConfigError as err:
        raise PruningError(str(err)) from None
    space = _space_from(_get(obj, "space", where, dict), f"{where}['space']")
    bo = _get(obj, "buckets", where, dict)
    n = _get(bo, "n", f"{where}['buckets']", int)
    if n < 1:
        raise PruningError(f"{where}['buckets']['n']={n}: expected at least 1 bucket")
    expect = space_buckets(space, cfg, size, n)
    for k in ("lo", "hi"):
        v = _get(bo, k, f"{where}['buckets']", (int, float))
        if abs(float(v) - getattr(expect, k)) > 1e-9 * max(1.0, abs(getattr(expect, k))):
            raise PruningError(f"{where}['buckets']['{k}']={v}: the space's FLOPs range gives {getattr(expect, k)} "
                               "for these supernet settings and input size (file from another FLOPs definition?)")
    kept = _get(obj, "kept", where, list)
    if len(kept) != n:
        raise PruningError(f"{where}['kept']: {len(kept)} buckets, expected {n}")
    names = dict(decisions(space))
    kk = []
    for b, k in enumerate(kept):
        wb = f"{where}['kept'][{b}]"
        if not isinstance(k, dict):
            raise PruningError(f"{wb}: expected an object decision -> choices")
        for dec, vals in k.items():
            if dec not in names:
                raise PruningError(f"{wb}['{dec}']: not a decision of the space ({', '.join(names)})")
            if not isinstance(vals, list):
                raise PruningError(f"{wb}['{dec}']: expected a list of choices")
            if not vals:
                raise PruningError(f"{wb}['{dec}']: every choice pruned (a decision keeps at least one)")
        kk.append(k)
    thr = None
    pp = obj.get("path_pruning")
    if pp is not None:
        wp = f"{where}['path_pruning']"
        r = _get(pp, "r_path", wp, (int, float))
        vals = _get(pp, "thresholds", wp, list)
        cnt = _get(pp, "n", wp, list)
        if len(vals) != n or len(cnt) != n or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals):
            raise PruningError(f"{wp}: expected {n} finite thresholds and {n} counts")
        thr = PathThresholds(float(r), [float(v) for v in vals], [int(c) for c in cnt], pp.get("scorer"))
    rows = None
    if obj.get("operation_scores") is not None:
        try:
            rows = [ScoreRow.from_dict(r) for r in obj["operation_scores"]]
        except (KeyError, TypeError, ValueError) as err:
            raise PruningError(f"{where}['operation_scores']: bad row ({err})") from None
    try:
        return PrunedSpace(space, cfg, size, Buckets(expect.lo, expect.hi, n), kk,
                           strategy=obj.get("strategy") or {}, thresholds=thr, size=obj.get("size"), scores=rows)
    except PruningError as err:
        raise PruningError(f"{where}['kept']: {err}") from None


class _Cursor:
    """The candidate sequence of one draw: proposal batches from one generator, accepted ones in order."""

    def __init__(self, sampler: "PrunedSampler", gen: np.random.Generator):
        self.s, self.gen = sampler, gen
        self.dr = None
        self.idx = np.zeros(0, np.int64)
        self.pos = 0
        self.drawn = 0          # proposal candidates before the current batch
        self.scored = 0
        self.failed = 0         # scored paths in a row below their threshold
        self.last = 0           # proposal candidates drawn when the last path was returned
        self.rejected = np.zeros(sampler.pruned.buckets.n, np.int64)

    def take(self, k: int) -> List[int]:
        """Up to ``k`` next accepted candidates (indices into ``self.dr``) of the current batch,
        drawing a new batch when it is used up."""
        s = self.s
        while self.pos >= len(self.idx):
            if self.dr is not None:
                self.drawn += s.batch
            if self.drawn - self.last >= s.max_candidates:
                raise PruningError(f"the pruned space's acceptance collapsed: none of {self.drawn - self.last} "
                                   f"candidates landed in its own bucket (the proposal holds {s.proposal.total} "
                                   "paths)")
            self.dr = s.proposal.draw(self.gen, s.batch)
            self.idx = np.nonzero(self.dr.accepted)[0]
            self.pos = 0
        out = self.idx[self.pos:self.pos + k].tolist()
        self.pos += len(out)
        return out

    def result(self, i: int, score: Optional[float], scored: int) -> SampledPath:
        dr = self.dr
        self.last = self.drawn + i + 1
        return SampledPath(dr.archs.arch(i), float(dr.flops[i]), int(dr.bucket[i]), score, self.drawn + i + 1, scored)


class PrunedSampler:
    """Exact uniform draws from Ã, optionally path-pruned (module doc); ``batch``: proposal
    candidates drawn per round, ``score_chunk``: accepted candidates scored first per draw."""

    def __init__(self, pruned: PrunedSpace, scorer=None, thresholds: Optional[PathThresholds] = None,
                 batch: int = 16, score_chunk: int = 2, max_candidates: int = 1 << 20, max_scored: int = 1000):
        """``max_candidates``: proposal candidates per path before the acceptance of Ã counts as
        collapsed; ``max_scored``: scored paths in a row below their threshold before path
        pruning's acceptance counts as collapsed (PruningError naming the buckets)."""
        self.pruned = pruned
        self.proposal = pruned.proposal()
        self.scorer = Scorer(scorer) if scorer is not None else None
        if self.scorer is not None:
            self.scorer.check_buckets(pruned.buckets)
            if thresholds is None:
                raise PruningError("path pruning needs thresholds (path_thresholds(...) or a pruned space file "
                                   "with 'path_pruning')")
        elif thresholds is not None:
            raise PruningError("thresholds given without a scorer to apply them")
        self.thresholds = None if thresholds is None else np.asarray(thresholds.values, np.float64)
        self.batch, self.score_chunk = int(batch), int(score_chunk)
        self.max_candidates, self.max_scored = int(max_candidates), int(max_scored)

    def sample(self, rng) -> SampledPath:
        """One path, uniform over Ã (path-pruned with a scorer); a function of ``rng`` only."""
        return self.sample_steps([rng])[0]

    def sample_steps(self, rngs: Sequence) -> List[SampledPath]:
        """``[sample(r) for r in rngs]``, the same paths, with the filter called once for all the
        draws' candidates per round instead of once per draw (a trainer that seeds one generator
        per step can draw a block of steps ahead; the filter's per-call cost is then shared)."""
        cur = [_Cursor(self, generator(r)) for r in rngs]
        out: List[Optional[SampledPath]] = [None] * len(cur)
        if self.scorer is None:
            for j, c in enumerate(cur):
                out[j] = c.result(c.take(1)[0], None, 0)
            return out
        # one draw: few filter calls (per-call cost); a block: few paths per step (per-path cost)
        single = len(cur) == 1
        todo, k, grow = list(range(len(cur))), self.score_chunk if single else 1, 4 if single else 2
        while todo:
            picks = []
            for j in todo:
                ii = cur[j].take(k)                                       # may draw a new batch
                picks.append((j, cur[j].dr, ii))
            archs, flops, bks = [], [], []
            for j, dr, ii in picks:
                archs += dr.archs.take(ii).to_archs()
                flops.append(dr.flops[ii])
                bks.append(dr.bucket[ii])
            sc = self.scorer(archs, np.concatenate(flops), np.concatenate(bks))
            pos, left = 0, []
            for j, _, ii in picks:
                c, done = cur[j], False
                dr = c.dr
                for i in ii:
                    v = float(sc[pos])
                    pos += 1
                    if done:
                        continue
                    c.scored += 1
                    if v >= self.thresholds[dr.bucket[i]]:
                        out[j], done = c.result(i, v, c.scored), True
                    else:
                        c.failed += 1
                        c.rejected[dr.bucket[i]] += 1
                        if c.failed >= self.max_scored:
                            raise PruningError(self._collapse(c.rejected, c.failed))
                if not done:
                    left.append(j)
            todo, k = left, min(grow * k, 256)
        return out

    def sample_many(self, rng, n: int) -> List[SampledPath]:
        """``n`` independent draws from one generator (the first ``n`` accepted, path-pruned
        candidates of one candidate sequence; not the paths of ``n`` calls of ``sample``)."""
        c = _Cursor(self, generator(rng))
        out: List[SampledPath] = []
        while len(out) < n:
            ii = c.take(n - len(out) if self.scorer is None else max(2 * (n - len(out)), 16))
            dr = c.dr
            if self.scorer is None:
                out += [c.result(i, None, 0) for i in ii]
                continue
            sc = self.scorer(dr.archs.take(ii).to_archs(), dr.flops[ii], dr.bucket[ii])
            for i, v in zip(ii, sc.tolist()):
                c.scored += 1
                if v >= self.thresholds[dr.bucket[i]]:
                    c.failed = 0
                    c.rejected[:] = 0
                    if len(out) < n:
                        out.append(c.result(i, v, c.scored))
                else:
                    c.failed += 1
                    c.rejected[dr.bucket[i]] += 1
                    if c.failed >= self.max_scored:
                        raise PruningError(self._collapse(c.rejected, c.failed))
        return out

    def _collapse(self, rejected, failed) -> str:
        worst = int(np.argmax(rejected))
        parts = [f"bucket {b}: acceptance 0 of {int(rejected[b])} (threshold {self.thresholds[b]:.6g})"
                 for b in range(len(rejected)) if rejected[b]]
        return (f"path pruning: acceptance collapsed in bucket {worst} and every other bucket drawn, {failed} paths "
                f"in a row below their bucket's threshold (" + "; ".join(parts)
                + "): the thresholds do not fit this scorer (another path filter?)")

    def path_acceptance(self, rng, n: int = 200) -> List[float]:
        """Per bucket, the share of ``n`` uniform paths of that bucket of Ã whose score reaches
        the threshold (1 - r_path for the scorer the thresholds were made with)."""
        if self.scorer is None:
            raise PruningError("no path pruning: no scorer")
        gen = generator(rng)
        out = []
        for b in range(self.pruned.buckets.n):
            archs, flops = self.pruned.sample_bucket(gen, b, n)
            s = self.scorer(archs.to_archs(), flops, np.full(len(flops), b))
            out.append(float((s >= self.thresholds[b]).mean()))
        return out


class StepDrawer:
    """The path of every training step, drawn by blocks of ``block`` steps aligned on multiples of
    ``block``: ``path(step)`` = ``sampler.sample_steps([rng_of_step(t) for t in its block])`` at
    the step's place. The block is a function of the step alone, so every rank and a run resumed
    at any step compute the same blocks, hence the same paths bit for bit, whatever the scorer's
    float rounding per batch; the one block kept is a memo, not state that changes a result.
    ``rng_of_step``: e.g. the trainer's ``step_rng(seed, step)``."""

    def __init__(self, sampler: PrunedSampler, rng_of_step, block: int = 64):
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise PruningError(f"block={block!r}: expected a positive number of steps")
        self.sampler, self.rng_of_step, self.block = sampler, rng_of_step, block
        self._first, self._paths = None, []

    def path(self, step: int) -> SampledPath:
        first = step - step % self.block
        if first != self._first:
            self._paths = self.sampler.sample_steps([self.rng_of_step(t) for t in range(first, first + self.block)])
            self._first = first
        return self._paths[step - first]


def path_thresholds(pruned: PrunedSpace, scorer, r_path: float = 0.25, n: int = 1000, rng=0,
                    scorer_id: Optional[Dict] = None) -> PathThresholds:
    """delta_b = the ``r_path`` quantile of the scores of ``n`` paths drawn uniformly from each
    bucket of Ã (paper: r_path = 0.25)."""
    r_path = check_ratio("r_path", r_path)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PruningError(f"n={n!r}: expected a positive number of paths per bucket")
    sc = Scorer(scorer)
    sc.check_buckets(pruned.buckets)
    gen = generator(rng)
    vals, cnt = [], []
    for b in range(pruned.buckets.n):
        archs, flops = pruned.sample_bucket(gen, b, n)
        s = sc(archs.to_archs(), flops, np.full(len(flops), b))
        vals.append(float(np.quantile(s, r_path)))
        cnt.append(len(s))
    return PathThresholds(r_path, vals, cnt, scorer_id)


def prune_space(space: SearchSpace, cfg: SupernetConfig, input_size: int, scorer, strategy: str = "flops_score_all",
                r_op: Optional[float] = None, r_op1: Optional[float] = None, r_op2: Optional[float] = None,
                n: int = 100, n_buckets: int = 5, r_path: Optional[float] = None, n_threshold: int = 1000,
                seed: int = 0, size_draws: int = 4000, scorer_id: Optional[Dict] = None,
                scores: Optional[OperationScores] = None) -> PrunedSpace:
    """The whole of §3.2 steps 4-5: operation scores, pruning by ``strategy``, the pruned space
    with its size estimate, and (with ``r_path``) path-pruning thresholds. Deterministic in ``seed``.
    Paper: ``strategy='flops_score_all', r_op1=0.1, r_op2=0.3, n=100, r_path=0.25``."""
    if strategy == "flops_score_all" and r_op1 is None and r_op2 is None and r_op is None:
        r_op1, r_op2 = 0.1, 0.3
    strategy_params(strategy, r_op, r_op1, r_op2)          # refuse bad ratios before any work
    if r_path is not None:
        check_ratio("r_path", r_path)
    buckets = space_buckets(space, cfg, input_size, n_buckets)
    table = FlopsTable(cfg, input_size)
    if scores is None:
        scores = operation_scores(space, cfg, input_size, scorer, n=n, buckets=buckets, rng=seed * 4 + 1,
                                  table=table)
    res: PruneResult = prune_operations(scores, strategy, r_op=r_op, r_op1=r_op1, r_op2=r_op2, rng=seed * 4 + 2,
                                        table=table)
    info = {**res.to_dict(), "n": scores.n_requested, "seed": seed,
            "short_cells": len(scores.short_cells())}
    pruned = PrunedSpace(space, cfg, input_size, buckets, res.kept, strategy=info, scores=scores.rows)
    pruned._table = table
    pruned.estimate_size(rng=seed * 4 + 3, draws=size_draws)
    if r_path is not None:
        pruned.thresholds = path_thresholds(pruned, scorer, r_path, n_threshold, rng=seed * 4 + 4,
                                            scorer_id=scorer_id)
    return pruned


def file_sha256(path: str) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def filter_id(h5_path: str) -> Dict:
    """How a pruned space names the filter its thresholds come from: file name and SHA-256."""
    return {"file": os.path.basename(h5_path), "sha256": file_sha256(h5_path)}
