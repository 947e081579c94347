"""Training and fine-tuning the path filter (DetOFA §3.1).

80/20 split (stratified by bucket), Adam, mini-batches of random paths whose within-bucket pairs
(all pairs for the ablation) make the FLOPs-bounded loss; after every epoch the validation loss
(the same loss over the validation split's pairs) is measured and the best weights are kept (the
starting weights count as epoch 0, so fine-tuning never ends worse on validation than it began).
Everything random (initial weights, split, batch order) follows ``seed``.

Transfer (the paper's pre-train / fine-tune): ``train_path_filter(source_set)`` then
``train_path_filter(target_set, init=filter_or_h5)``; the fine-tuned filter keeps the initial
filter's vocabulary and switches and takes the target's buckets.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from ..schema import Bool, Choice, Int, Num, SchemaError, epochs_spec, seed_spec, validate
from ..space import Buckets, SearchSpace, SupernetConfig, space_buckets
from .loss import pair_targets, pairwise_hinge_loss, pairwise_hinge_loss_nn
from .model import PathFilter, PathFilterConfig, PathFilterError, SEQ_LEN, default_vocabulary
from .pathset import PathSet
from .quality import quality_report

MIN_PATHS = 10
TRAIN_OPTIONS = {   # what a user sets: ``path-filter train`` flags, the runner's ``hparams.filter``
    "epochs": epochs_spec(default=20),
    "batch_size": Int(2, 100_000, default=32),
    "lr": Num(0, 1, lo_open=True, default=3e-4),      # Adam on a small transformer
    "val_fraction": Num(0, 1, lo_open=True, hi_open=True, default=0.2),
    "budget": Bool(nullable=True, default=None),
    "block_pe": Bool(nullable=True, default=None),
    "pe_norm": Choice(("width", "index"), nullable=True, default=None),
    "flops_bounded": Bool(default=True),
    "max_seconds": Num(0, lo_open=True, nullable=True, default=None),
}
SEED = seed_spec()


@dataclass
class TrainResult:
    filter: PathFilter
    buckets: Buckets
    train_index: np.ndarray
    val_index: np.ndarray
    history: List[Dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("nan")
    seconds: float = 0.0

    def quality(self, pathset: PathSet, ratios=None) -> Dict:
        """Quality report of the filter on ``pathset`` (e.g. the validation split or a test set),
        with the FLOPs-only baseline; buckets are the training buckets."""
        return evaluate(self.filter, pathset, buckets=self.buckets, **({} if ratios is None else {"ratios": ratios}))


def evaluate(flt: PathFilter, pathset: PathSet, buckets: Optional[Buckets] = None, **kw) -> Dict:
    """``quality_report`` of ``flt`` on ``pathset`` (buckets: the filter's unless given)."""
    buckets = buckets or flt.config.buckets
    bucket = buckets.indices(pathset.flops)
    scores = flt.score(pathset.archs, bucket=bucket)
    return quality_report(scores, pathset.val_loss, bucket, flops=pathset.flops, **kw)


def split_indices(bucket: np.ndarray, val_fraction: float, seed: int):
    """(train, validation) indices: in every bucket, round(val_fraction * n_b) random paths go to
    validation (at least one when the bucket has two or more)."""
    rng = np.random.RandomState(seed)
    train, val = [], []
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(val_fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val.extend(idx[:k])
        train.extend(idx[k:])
    return np.sort(np.array(train, np.int64)), np.sort(np.array(val, np.int64))


def resolve_buckets(pathset: PathSet, buckets: Optional[Buckets] = None, space: Optional[SearchSpace] = None,
                    supernet: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                    n_buckets: int = 5) -> Buckets:
    """Explicit buckets, else those of ``space`` (with the supernet and input size), else equal-width
    buckets between the smallest and largest FLOPs of the path set."""
    if buckets is not None:
        return buckets
    if space is not None and supernet is not None and input_size is not None:
        return space_buckets(space, supernet, input_size, n_buckets)
    f = pathset.flops
    return Buckets(float(f.min()), float(f.max()), n_buckets)


def train_path_filter(pathset: PathSet, *, buckets: Optional[Buckets] = None, space: Optional[SearchSpace] = None,
                      supernet: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                      init: Union[None, str, PathFilter] = None, budget: Optional[bool] = None,
                      block_pe: Optional[bool] = None, pe_norm: Optional[str] = None,
                      flops_bounded: bool = True, epochs: int = 20, batch_size: int = 32, lr: float = 3e-4,
                      val_fraction: float = 0.2, seed: int = 0,
                      max_seconds: Optional[float] = None, n_buckets: int = 5,
                      log: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Train a path filter on ``pathset`` (or fine-tune ``init``, a PathFilter or a .h5 path).

    ``space``: the vocabulary comes from it (the full OFA space when None; from ``init`` when
    fine-tuning) and, with ``supernet`` and ``input_size``, the buckets (see ``resolve_buckets``).
    ``budget`` / ``block_pe`` / ``pe_norm``: model switches (default on / on / 'width'; taken from
    ``init`` when fine-tuning and must then agree). ``flops_bounded``: pairs within buckets (True)
    or across all buckets (the ablation).
    ``max_seconds``: stop after the epoch that passes this wall time. Returns a TrainResult whose
    filter holds the best-validation weights."""
    import nnabla as nn
    import nnabla.random as nr
    import nnabla.solvers as S

    t0 = time.perf_counter()
    if len(pathset) < MIN_PATHS:
        raise PathFilterError(f"path set has {len(pathset)} paths; training needs at least {MIN_PATHS}")
    try:
        validate({"epochs": epochs, "batch_size": batch_size, "lr": lr, "val_fraction": val_fraction,
                  "budget": budget, "block_pe": block_pe, "pe_norm": pe_norm, "flops_bounded": flops_bounded,
                  "max_seconds": max_seconds}, TRAIN_OPTIONS, "path filter training")
        SEED(seed, "path filter training.seed")
    except SchemaError as err:
        raise PathFilterError(str(err)) from None
    buckets = resolve_buckets(pathset, buckets, space, supernet, input_size, n_buckets)
    nr.seed(seed)
    if init is not None:
        base = PathFilter.load(init) if isinstance(init, str) else init
        for name, want in (("budget", budget), ("block_pe", block_pe), ("pe_norm", pe_norm)):
            have = getattr(base.config, name)
            if want is not None and want != have:
                raise PathFilterError(f"{name}={want} but the initial filter was trained with {name}={have}")
        c = base.config
        config = PathFilterConfig(vocab=c.vocab, buckets=buckets, budget=c.budget, block_pe=c.block_pe,
                                  pe_norm=c.pe_norm, token_dim=c.token_dim, bucket_dim=c.bucket_dim,
                                  n_layers=c.n_layers, n_heads=c.n_heads, d_ff=c.d_ff, d_fc=c.d_fc,
                                  supernet=supernet or c.supernet, input_size=input_size or c.input_size)
        flt = PathFilter(config, seed=seed)
        flt.set_state(base.state(), where="initial filter")
    else:
        config = PathFilterConfig(vocab=default_vocabulary(space), buckets=buckets,
                                  budget=True if budget is None else bool(budget),
                                  block_pe=True if block_pe is None else bool(block_pe),
                                  pe_norm="width" if pe_norm is None else pe_norm,
                                  supernet=supernet, input_size=input_size)
        flt = PathFilter(config, seed=seed)
    config.meta = {"flops_bounded": bool(flops_bounded), "seed": int(seed), "epochs": int(epochs),
                   "lr": float(lr), "batch_size": int(batch_size), "n_paths": len(pathset),
                   "fine_tuned": init is not None}

    bucket = buckets.indices(pathset.flops)
    ids, rows = flt.inputs(pathset.archs, bucket=bucket)
    loss_v = pathset.val_loss
    tr, va = split_indices(bucket, val_fraction, seed)
    rng = np.random.RandomState(seed + 1)

    bs = int(min(batch_size, len(tr)))
    tok = nn.Variable((bs, SEQ_LEN))
    bkt = nn.Variable((bs,))
    tgt = nn.Variable((bs, bs))
    wts = nn.Variable((bs, bs))
    loss = pairwise_hinge_loss_nn(flt.graph(tok, bkt), tgt, wts)
    solver = S.Adam(alpha=lr)
    solver.set_parameters(flt.parameters())

    def val_loss_now():
        s = flt.score_ids(ids[va], rows[va])
        return pairwise_hinge_loss(s, loss_v[va], bucket[va], flops_bounded)

    best_state, best_epoch = flt.state(), 0
    best_val = val_loss_now()
    history = [{"epoch": 0, "train_loss": None, "val_loss": best_val, "seconds": time.perf_counter() - t0}]
    if log:
        log(f"epoch 0: val loss {best_val:.5f}")
    for epoch in range(1, epochs + 1):
        order = tr[rng.permutation(len(tr))]
        total, steps = 0.0, 0
        for i in range(0, len(order), bs):
            batch = order[i:i + bs]
            n = len(batch)
            if n < 2:
                continue
            t, m = pair_targets(loss_v[batch], bucket[batch], flops_bounded)
            npairs = m.sum()
            if npairs == 0:
                continue
            tb = np.zeros((bs, SEQ_LEN), np.int32)
            tb[:n] = ids[batch]
            bb = np.zeros(bs, np.int32)
            bb[:n] = rows[batch]
            tt = np.zeros((bs, bs), np.float32)
            tt[:n, :n] = t
            ww = np.zeros((bs, bs), np.float32)
            ww[:n, :n] = m / npairs
            tok.d, bkt.d, tgt.d, wts.d = tb, bb, tt, ww
            loss.forward(clear_no_need_grad=True)
            solver.zero_grad()
            loss.backward(clear_buffer=True)
            solver.update()
            total += float(loss.d)
            steps += 1
            if not np.isfinite(total):
                raise PathFilterError(f"training diverged in epoch {epoch} (loss {total}); try a lower lr "
                                      f"than {lr:g}")
        v = val_loss_now()
        history.append({"epoch": epoch, "train_loss": total / steps if steps else None, "val_loss": v,
                        "seconds": time.perf_counter() - t0})
        if log:
            log(f"epoch {epoch}: train loss {history[-1]['train_loss']}, val loss {v:.5f}")
        if np.isfinite(v) and (not np.isfinite(best_val) or v < best_val):
            best_val, best_epoch, best_state = v, epoch, flt.state()
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    if not np.isfinite(best_val):  # no validation pair at all: keep the last weights
        best_state, best_epoch = flt.state(), history[-1]["epoch"]
    flt.set_state(best_state)
    config.meta.update({"best_epoch": best_epoch, "best_val_loss": float(best_val)})
    return TrainResult(flt, buckets, tr, va, history, best_epoch, float(best_val), time.perf_counter() - t0)


def validation_quality(result: TrainResult, pathset: PathSet) -> Dict:
    """Quality report on the validation split the result was selected on."""
    return result.quality(pathset.subset(result.val_index))


__all__ = ["TrainResult", "train_path_filter", "evaluate", "split_indices", "resolve_buckets", "validation_quality",
           "quality_report"]
