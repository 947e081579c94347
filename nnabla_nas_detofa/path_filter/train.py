"""Training and fine-tuning the path filter (DetOFA §3.1).

Data: the path set is split bucket by bucket (stratified) into train / validation and, with
``test_fraction`` > 0, a test split that neither trains the filter nor selects its checkpoint, so
quality reported on it is an honest held-out figure (``held_out_quality``).

Pairs (DETOFA.md Eq. 4-5): every mini-batch is drawn from one FLOPs bucket and every pair of
distinct paths in it counts (``batch_pairs``), so all of a step's pairs are within-bucket pairs;
an epoch visits every training path once, the batches of all buckets in random order. The
ablation ``flops_bounded=False`` draws batches from all buckets and counts every pair, across
buckets too.

**Decision: the loss is on the logit** (``loss_on='logit'``; the score is still its sigmoid, so
rankings are the same): ``g = z(a) - z(a')``. Read literally on sigmoid scores in (0, 1), the
margin 1 is never met (|g| < 1), every pair pushes its two scores towards 0 and 1, the sigmoid
saturates and learning stalls (a linear token model trained that way reaches within-bucket tau
0.77 on the synthetic task where the same model with the loss on its logit reaches 0.94; the
transformer alone plateaued at ~0.5). ``loss_on='score'`` keeps the literal form.

Wide head (``wide=True``, the default for new filters): a linear function of the one-hot
(position, token) pairs and one-hot choices added to the network's logit ("wide and deep").
From scratch it is first fitted alone (``warm_up_wide``: the network's output layer zeroed, the
same pairwise loss on all training pairs, early-stopped on validation tau), then the whole filter
trains jointly, the wide weights with their own learning rate ``wide_lr``.

Model selection: after every epoch the validation split is scored; the checkpoint with the best
validation *within-bucket Kendall tau* is kept (``select='loss'``: the lowest validation loss, the
paper's rule); only a strict improvement counts. Training stops after ``patience`` epochs without
improvement or at the ``epochs`` cap. A filter trained from scratch is always trained for at
least one epoch and never returns its untrained weights; fine-tuning counts its starting weights
as epoch 0, so it never ends worse on validation than it began.

Each step runs the network's forward and backward passes in numpy (``numpy_net``; tested equal
to the NNabla graph's and its ``backward()``) and updates the NNabla parameters with NNabla's Adam
solver (L2 weight decay through the solver). ``ensemble`` > 1 trains that many members with seeds
``seed, seed + 1, ...`` and returns a filter that averages their logits. With ``bagging`` (the
default) every member after the first draws its own validation split from the paths outside the
test split (``member_split``), so each member selects its checkpoint on other paths and the
ensemble as a whole learns from all of them, as ridge regression's refit on train + validation
does; without it every member uses the same split.

**Defaults** (``DEFAULTS``): 4 bagged members. On the demo supernet's path set
(``benchmarks/data/demo_paths.jsonl``, 300 paths, 30 % of every bucket held out, 3 split seeds)
one network ranked about as well as ridge regression (within-bucket tau 0.33 vs 0.31 on an
earlier 267-path snapshot, below it on one split of three); 4 bagged members reach tau 0.405 /
weakest-25 % precision 0.627 against ridge's 0.352 / 0.560 (mean of the 3 splits). Each member
costs one training (about 15 s on those 210 paths, about a minute on 600, one CPU core).
Everything random (initial weights, split, batch order) follows ``seed``: the same call gives the
same filter.

Transfer (the paper's pre-train / fine-tune): ``train_path_filter(source_set)`` then
``train_path_filter(target_set, init=filter_or_h5)``; the fine-tuned filter keeps the initial
filter's vocabulary and switches and takes the target's buckets.
"""
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Union

import numpy as np

from ..schema import Bool, Choice, Int, Num, SchemaError, epochs_spec, seed_spec, validate
from ..space import Buckets, SearchSpace, SupernetConfig, space_buckets
from .loss import pair_targets, pairwise_hinge_loss
from .model import PathFilter, PathFilterConfig, PathFilterError, default_vocabulary
from .numpy_net import WIDE_CHOICE, WIDE_TOKEN, choice_map, pair_loss_grad, wide_offsets
from .pathset import PathSet
from .quality import kendall_tau_within, quality_report

MIN_PATHS = 10            # training from scratch
MIN_FINE_TUNE_PATHS = 2   # fine-tuning (too few pairs: the initial weights are kept)
SCOPE_PREFIX = "path_filter/"
SELECT = ("tau", "loss")
LOSS_ON = ("logit", "score")
DEFAULTS = dict(epochs=100, patience=10, batch_size=32, lr=1e-3, wide_lr=0.1, weight_decay=0.0, val_fraction=0.2,
                test_fraction=0.0, ensemble=4, bagging=True, select="tau", wide=True, loss_on="logit", warm_up=True)
# what a user sets: ``path-filter train`` flags and the runner's ``hparams.filter`` (one definition)
TRAIN_OPTIONS = {
    "epochs": epochs_spec(default=DEFAULTS["epochs"]),     # the epoch cap (>= 1 from scratch)
    "patience": Int(1, 100_000, default=DEFAULTS["patience"]),
    "batch_size": Int(2, 100_000, default=DEFAULTS["batch_size"]),
    "lr": Num(0, 1, lo_open=True, default=DEFAULTS["lr"]),
    "wide_lr": Num(0, 10, lo_open=True, default=DEFAULTS["wide_lr"]),
    "weight_decay": Num(0, 1, default=DEFAULTS["weight_decay"]),
    "val_fraction": Num(0, 1, lo_open=True, hi_open=True, default=DEFAULTS["val_fraction"]),
    "test_fraction": Num(0, 1, hi_open=True, default=DEFAULTS["test_fraction"]),
    "ensemble": Int(1, 64, default=DEFAULTS["ensemble"]),
    "bagging": Bool(default=DEFAULTS["bagging"]),
    "select": Choice(SELECT, default=DEFAULTS["select"]),
    "loss_on": Choice(LOSS_ON, default=DEFAULTS["loss_on"]),
    "budget": Bool(nullable=True, default=None),
    "block_pe": Bool(nullable=True, default=None),
    "pe_norm": Choice(("width", "index"), nullable=True, default=None),
    "wide": Bool(nullable=True, default=None),
    "warm_up": Bool(default=DEFAULTS["warm_up"]),
    "flops_bounded": Bool(default=True),
    "max_seconds": Num(0, lo_open=True, nullable=True, default=None),
}
SEED = seed_spec()


class Split(NamedTuple):
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class TrainResult:
    filter: PathFilter
    buckets: Buckets
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    history: List[Dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("nan")
    best_val_tau: float = float("nan")
    stopped: str = ""
    seconds: float = 0.0
    members: List[Dict] = field(default_factory=list)

    def quality(self, pathset: PathSet, ratios=None) -> Dict:
        """Quality report of the filter on ``pathset`` with the FLOPs-only baseline; buckets are the
        training buckets."""
        return evaluate(self.filter, pathset, buckets=self.buckets, **({} if ratios is None else {"ratios": ratios}))

    def summary(self) -> Dict:
        return {"best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "best_val_kendall_tau_within": self.best_val_tau, "stopped": self.stopped,
                "seconds": self.seconds, "n_train": int(len(self.train_index)), "n_val": int(len(self.val_index)),
                "n_test": int(len(self.test_index)), "members": self.members}


def evaluate(flt, pathset: PathSet, buckets: Optional[Buckets] = None, **kw) -> Dict:
    """``quality_report`` of ``flt`` (a PathFilter or anything with ``score(archs, flops=...,
    bucket=...)``) on ``pathset``; buckets: the filter's unless given."""
    buckets = buckets or flt.config.buckets
    bucket = buckets.indices(pathset.flops)
    scores = flt.score(pathset.archs, flops=pathset.flops, bucket=bucket)
    return quality_report(scores, pathset.val_loss, bucket, flops=pathset.flops, **kw)


def split_indices(bucket: np.ndarray, val_fraction: float, seed: int, test_fraction: float = 0.0) -> Split:
    """(train, validation, test) indices, each sorted, drawn bucket by bucket: in a bucket of n
    paths, round(test_fraction * n) random paths go to test and round(val_fraction * n) to
    validation; a bucket of two or more paths keeps at least one training and one validation path,
    and one of three or more at least one test path when ``test_fraction`` > 0."""
    rng = np.random.RandomState(seed)
    train, val, test = [], [], []
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        kt = int(round(test_fraction * n)) if test_fraction > 0 else 0
        if test_fraction > 0 and n >= 3:
            kt = min(max(kt, 1), n - 2)
        else:
            kt = 0 if n < 3 else kt
        kv = int(round(val_fraction * n))
        if n - kt >= 2:
            kv = min(max(kv, 1), n - kt - 1)
        else:
            kv = 0
        test.extend(idx[:kt])
        val.extend(idx[kt:kt + kv])
        train.extend(idx[kt + kv:])
    as_idx = lambda v: np.sort(np.array(v, np.int64))  # noqa: E731
    return Split(as_idx(train), as_idx(val), as_idx(test))


def member_split(split: Split, bucket: np.ndarray, seed: int, member: int) -> Split:
    """Ensemble member ``member``'s split (bagging): the same test paths as ``split``; the other
    paths of every bucket re-drawn (seeded by ``seed`` and ``member``) into as many validation
    paths as ``split`` has in that bucket, the rest training. Member 0 keeps ``split``."""
    if member == 0:
        return split
    rng = np.random.RandomState([seed, member, 17])
    rest = np.sort(np.concatenate([split.train, split.val]))
    train, val = [], []
    for b in np.unique(bucket[rest]):
        idx = rest[bucket[rest] == b]
        idx = idx[rng.permutation(len(idx))]
        kv = int(np.count_nonzero(bucket[split.val] == b))
        val.extend(idx[:kv])
        train.extend(idx[kv:])
    return Split(np.sort(np.array(train, np.int64)), np.sort(np.array(val, np.int64)), split.test)


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


def epoch_batches(train: np.ndarray, bucket: np.ndarray, batch_size: int, flops_bounded: bool,
                  rng: np.random.RandomState) -> List[np.ndarray]:
    """One epoch of mini-batches over the training indices ``train``: with ``flops_bounded``, each
    batch holds paths of one bucket only (every bucket's paths shuffled and cut into batches of at
    most ``batch_size``, the batches of all buckets shuffled together); without it, batches of
    random paths from all buckets. Batches of one path (no pair) are dropped."""
    batches = []
    if flops_bounded:
        for b in np.unique(bucket[train]):
            idx = train[bucket[train] == b]
            idx = idx[rng.permutation(len(idx))]
            n_chunks = max(1, int(math.ceil(len(idx) / batch_size)))
            batches.extend(np.array_split(idx, n_chunks))  # equal-size chunks, none tiny
        batches = [batches[i] for i in rng.permutation(len(batches))]
    else:
        idx = train[rng.permutation(len(train))]
        n_chunks = max(1, int(math.ceil(len(idx) / batch_size)))
        batches = list(np.array_split(idx, n_chunks))
    return [bt for bt in batches if len(bt) >= 2]


def batch_pairs(val_loss: np.ndarray, bucket: np.ndarray, flops_bounded: bool):
    """(T, W) of one batch for the loss: ``pair_targets`` with the pair mask divided by the number of
    pairs (so the weighted sum is the mean over the batch's pairs); None when no pair counts."""
    t, m = pair_targets(val_loss, bucket, flops_bounded)
    n = m.sum()
    if n == 0:
        return None
    return t.astype(np.float64), (m / n).astype(np.float64)


def warm_up_wide(flt: PathFilter, ids: np.ndarray, train: np.ndarray, val: np.ndarray, bucket: np.ndarray,
                 val_loss: np.ndarray, flops_bounded: bool, loss_on: str, lr: float, max_steps: int = 1000,
                 eval_every: int = 10, patience: int = 10) -> Dict:
    """Fit the wide head of a freshly initialised filter alone, before the joint training: the
    network's output layer is zeroed (its logit is then its bias, a constant), and the wide weights
    (token and choice weights) follow Adam (NNabla's) on the same pairwise loss over *all* training
    pairs (within buckets, or all with ``flops_bounded=False``) at once, every step; the step count
    with the best validation within-bucket tau is kept (checked every ``eval_every`` steps,
    stopping after ``patience`` checks without improvement). A linear model of the one-hot
    features, it costs milliseconds a step, and the transformer then learns what it leaves over."""
    import nnabla.solvers as S
    params = flt.parameters()
    w_tok = params[SCOPE_PREFIX + WIDE_TOKEN]
    w_ch = params[SCOPE_PREFIX + WIDE_CHOICE]
    out_w = params[SCOPE_PREFIX + "out/affine/W"]
    out_w.d = np.zeros(out_w.shape, np.float32)
    const = float(params[SCOPE_PREFIX + "out/affine/b"].d.reshape(-1)[0])
    a, c0 = choice_map(tuple(flt.config.vocab))
    pos_tok = ids.astype(np.int64) + wide_offsets(len(flt.config.vocab))[None, :ids.shape[1]]
    groups = [train[bucket[train] == b] for b in np.unique(bucket[train])] if flops_bounded else [train]
    groups = [g for g in groups if len(g) >= 2]
    pairs = [batch_pairs(val_loss[g], bucket[g], flops_bounded) for g in groups]
    n_pairs = [float(np.count_nonzero(p[1])) for p in pairs]
    weights = [n / sum(n_pairs) for n in n_pairs]  # the mean over all pairs of the training split
    solver = S.Adam(alpha=lr)
    solver.set_parameters({"token": w_tok, "choice": w_ch})

    def logits(idx):
        table = w_tok.d[:, 0].astype(np.float64) + a @ w_ch.d[:, 0]
        return const + float(c0 @ w_ch.d[:, 0]) + table[pos_tok[idx]].sum(axis=1)

    def val_tau():
        return kendall_tau_within(logits(val), -val_loss[val], bucket[val]) if len(val) else float("nan")

    def snapshot():
        return w_tok.d.copy(), w_ch.d.copy()

    best_tau, best_step, best_w, checks = val_tau(), 0, snapshot(), 0
    step = 0
    for step in range(1, max_steps + 1):
        g_rows = np.zeros(w_tok.shape[0])
        g_sum = 0.0
        for g, (t, m), share in zip(groups, pairs, weights):
            z = logits(g)
            if loss_on == "logit":
                _, dz = pair_loss_grad(z, t, m)
            else:
                sz = 1.0 / (1.0 + np.exp(-z))
                _, ds = pair_loss_grad(sz, t, m)
                dz = ds * sz * (1.0 - sz)
            g_rows += share * np.bincount(pos_tok[g].reshape(-1), weights=np.repeat(dz, pos_tok.shape[1]),
                                          minlength=w_tok.shape[0])
            g_sum += share * float(dz.sum())
        w_tok.g = g_rows.reshape(w_tok.shape).astype(np.float32)
        w_ch.g = (a.T @ g_rows + c0 * g_sum).reshape(w_ch.shape).astype(np.float32)
        solver.update()
        if step % eval_every == 0:
            tau = val_tau()
            if np.isfinite(tau) and (not np.isfinite(best_tau) or tau > best_tau + 1e-12):
                best_tau, best_step, best_w, checks = tau, step, snapshot(), 0
            else:
                checks += 1
                if checks >= patience:
                    break
    if not np.isfinite(best_tau):  # no validation figure: keep the last step
        best_step, best_w = step, snapshot()
    w_tok.d, w_ch.d = best_w
    flt.refresh()  # the assignments above gave the wide weights new arrays
    return {"steps": int(best_step), "val_tau": float(best_tau)}


def path_tokens(archs: Sequence) -> List[str]:
    """The distinct tokens of ``archs`` (``space.tokens``)."""
    from ..space.tokens import Tokenizer, all_tokens
    tok = Tokenizer(all_tokens())
    return [tok.vocab[i] for i in np.unique(tok.ids(archs))]


def check_train_options(options: Dict, fine_tuning: bool, where: str = "path filter training") -> Dict:
    """``options`` (a subset of TRAIN_OPTIONS' keys) checked and completed with defaults;
    SchemaError naming ``where.key``. Epochs >= 1 from scratch; val + test fractions below 1."""
    v = validate(options, TRAIN_OPTIONS, where)
    if not fine_tuning and v["epochs"] < 1:
        raise SchemaError(f"{where}.epochs={v['epochs']}: expected >= 1 when training from scratch (0 only "
                          "when fine-tuning, which then keeps the initial weights)")
    if v["val_fraction"] + v["test_fraction"] >= 1:
        raise SchemaError(f"{where}.test_fraction={v['test_fraction']}: expected val_fraction + test_fraction "
                          f"< 1 (val_fraction={v['val_fraction']})")
    return v


SWITCHES = ("budget", "block_pe", "pe_norm", "wide")


def check_initial_filter(base: PathFilter, options: Dict, tokens: Optional[Sequence[str]] = None,
                         n_buckets: Optional[int] = None, where: str = "initial filter") -> None:
    """A pre-trained filter fits the fine-tuning asked of it, else PathFilterError in one line:
    the model switches set in ``options`` (None = take the filter's) equal the filter's, an
    ensemble is fine-tuned member by member (``options["ensemble"]`` = its member count), and every
    token in ``tokens`` (of the target space or path set) is in the filter's vocabulary: a token
    it does not know would be read as "unknown", one shared embedding row, and never learned. With
    budget conditioning, the target's number of FLOPs buckets (``n_buckets``) is the filter's (one
    learned embedding per bucket; fine-tuning re-reads bucket k as the k-th of the target's range)."""
    for name in SWITCHES:
        want, have = options.get(name), getattr(base.config, name)
        if want is not None and want != have:
            raise PathFilterError(f"{where}: {name}={want} but the initial filter was trained with {name}={have}")
    if n_buckets is not None and base.config.budget and n_buckets != base.config.buckets.n:
        raise PathFilterError(f"{where}: n_buckets={n_buckets} but the initial filter was trained on "
                              f"{base.config.buckets.n} FLOPs buckets (its bucket embedding has one row each)")
    ens = options.get("ensemble", DEFAULTS["ensemble"])
    if base.n_members != 1 and ens != base.n_members:
        raise PathFilterError(f"{where}: ensemble={ens} but the initial filter has {base.n_members} members")
    if tokens is not None:
        known = set(base.config.vocab)
        missing = sorted(set(tokens) - known)
        if missing:
            raise PathFilterError(f"{where}: its vocabulary ({len(known)} tokens) lacks {len(missing)} token(s) of the "
                                  f"target paths: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''} "
                                  "(pre-train it on a space that holds the target space)")


def _check_args(pathset, init, seed, **options):
    """Every option against TRAIN_OPTIONS (PathFilterError naming it), before any work."""
    need = MIN_PATHS if init is None else MIN_FINE_TUNE_PATHS
    if len(pathset) < need:
        raise PathFilterError(f"path set has {len(pathset)} paths; {'fine-tuning' if init is not None else 'training'} "
                              f"needs at least {need}")
    try:
        check_train_options(options, init is not None)
        SEED(seed, "path filter training.seed")
    except SchemaError as err:
        raise PathFilterError(str(err)) from None


def train_path_filter(pathset: PathSet, *, buckets: Optional[Buckets] = None, space: Optional[SearchSpace] = None,
                      supernet: Optional[SupernetConfig] = None, input_size: Optional[int] = None,
                      init: Union[None, str, PathFilter] = None, budget: Optional[bool] = None,
                      block_pe: Optional[bool] = None, pe_norm: Optional[str] = None, wide: Optional[bool] = None,
                      flops_bounded: bool = True, epochs: int = DEFAULTS["epochs"],
                      patience: int = DEFAULTS["patience"], batch_size: int = DEFAULTS["batch_size"],
                      lr: float = DEFAULTS["lr"], wide_lr: float = DEFAULTS["wide_lr"],
                      loss_on: str = DEFAULTS["loss_on"], weight_decay: float = DEFAULTS["weight_decay"],
                      val_fraction: float = DEFAULTS["val_fraction"], test_fraction: float = DEFAULTS["test_fraction"],
                      ensemble: int = DEFAULTS["ensemble"], bagging: bool = DEFAULTS["bagging"],
                      select: str = DEFAULTS["select"],
                      warm_up: bool = DEFAULTS["warm_up"], seed: int = 0,
                      max_seconds: Optional[float] = None, n_buckets: int = 5,
                      log: Optional[Callable[[str], None]] = None,
                      on_epoch: Optional[Callable[[int, PathFilter], None]] = None) -> TrainResult:
    """Train a path filter on ``pathset`` (or fine-tune ``init``, a PathFilter or a .h5 path).

    ``space``: the vocabulary comes from it (the full OFA space when None; from ``init`` when
    fine-tuning) and, with ``supernet`` and ``input_size``, the buckets (see ``resolve_buckets``).
    ``budget`` / ``block_pe`` / ``pe_norm`` / ``wide``: model switches (default on / on / 'width' /
    on; taken from ``init`` when fine-tuning and must then agree). ``flops_bounded``: pairs within
    buckets (True) or across all buckets (the ablation). ``epochs``: the epoch cap; ``patience``:
    stop after this many epochs without a better validation score. ``test_fraction``: the share
    of every bucket held out as the test split (``TrainResult.test_index``). ``max_seconds``:
    stop after the epoch that passes this wall time (per member). ``on_epoch(epoch, filter)``:
    called after every epoch with the network being trained (e.g. to follow a test metric).
    Returns a TrainResult whose filter holds the selected weights."""
    import nnabla.solvers as S

    t0 = time.perf_counter()
    _check_args(pathset, init, seed, epochs=epochs, patience=patience, batch_size=batch_size, lr=lr,
                wide_lr=wide_lr, weight_decay=weight_decay, val_fraction=val_fraction, test_fraction=test_fraction,
                ensemble=ensemble, bagging=bagging, select=select, loss_on=loss_on, budget=budget, block_pe=block_pe,
                pe_norm=pe_norm, wide=wide, warm_up=warm_up, flops_bounded=flops_bounded, max_seconds=max_seconds)
    buckets = resolve_buckets(pathset, buckets, space, supernet, input_size, n_buckets)
    base = None
    if init is not None:
        base = PathFilter.load(init) if isinstance(init, str) else init
        check_initial_filter(base, dict(budget=budget, block_pe=block_pe, pe_norm=pe_norm, wide=wide,
                                        ensemble=ensemble), path_tokens(pathset.archs), buckets.n)
        c = base.config
        config = PathFilterConfig(vocab=c.vocab, buckets=buckets, budget=c.budget, block_pe=c.block_pe,
                                  pe_norm=c.pe_norm, wide=c.wide, token_dim=c.token_dim, bucket_dim=c.bucket_dim,
                                  n_layers=c.n_layers, n_heads=c.n_heads, d_ff=c.d_ff, d_fc=c.d_fc,
                                  supernet=supernet or c.supernet, input_size=input_size or c.input_size)
    else:
        config = PathFilterConfig(vocab=default_vocabulary(space), buckets=buckets,
                                  budget=True if budget is None else bool(budget),
                                  block_pe=True if block_pe is None else bool(block_pe),
                                  pe_norm="width" if pe_norm is None else pe_norm,
                                  wide=DEFAULTS["wide"] if wide is None else bool(wide),
                                  supernet=supernet, input_size=input_size)

    bucket = buckets.indices(pathset.flops)
    loss_v = pathset.val_loss
    split = split_indices(bucket, val_fraction, seed, test_fraction)
    tr, va = split.train, split.val
    template = PathFilter(config, seed=seed)
    ids, rows = template.inputs(pathset.archs, bucket=bucket)

    def run_member(flt: PathFilter, member_seed: int, fine_tune: bool, tr: np.ndarray, va: np.ndarray):
        rng = np.random.RandomState(member_seed + 1)
        params = flt.parameters()
        wide_keys = {SCOPE_PREFIX + WIDE_TOKEN, SCOPE_PREFIX + WIDE_CHOICE}
        solver = S.Adam(alpha=lr)
        solver.set_parameters({k: v for k, v in params.items() if k not in wide_keys})
        solvers = [solver]
        if wide_keys <= set(params):
            wsolver = S.Adam(alpha=wide_lr)
            wsolver.set_parameters({k: params[k] for k in sorted(wide_keys)})
            solvers.append(wsolver)
        scope = len("path_filter/")

        def validate():
            z = flt.logits_ids(ids[va], rows[va])
            s = z if loss_on == "logit" else 1.0 / (1.0 + np.exp(-z))
            return (pairwise_hinge_loss(s, loss_v[va], bucket[va], flops_bounded),
                    kendall_tau_within(s, -loss_v[va], bucket[va]))

        def better(cand, best):
            """Strictly better on the selection metric (the other one is not a tie-breaker, so an
            epoch that changes nothing never counts as an improvement)."""
            i = 1 if select == "tau" else 0
            c, b = cand[i], best[i]
            if not np.isfinite(c):  # no validation figure (too few paths): the latest epoch wins
                return not np.isfinite(b)
            if not np.isfinite(b):
                return True
            return c > b + 1e-12 if select == "tau" else c < b - 1e-12

        warm = None
        if not fine_tune and flt.config.wide and warm_up:
            warm = warm_up_wide(flt, ids, tr, va, bucket, loss_v, flops_bounded, loss_on, wide_lr)
            if log:
                log(f"wide head warm-up: {warm['steps']} steps, val tau within buckets {warm['val_tau']:.4f}")
        # views on the parameters, taken after the warm-up (which assigns arrays to the wide weights)
        views = {k: v.d for k, v in params.items()}
        grads = {k: v.g for k, v in params.items()}
        net = flt.numpy_net()
        start = validate()  # epoch 0: the weights joint training starts from
        history = [{"epoch": 0, "train_loss": None, "val_loss": start[0], "val_tau": start[1],
                    "seconds": time.perf_counter() - t0}]
        if fine_tune:
            best, best_epoch, best_state = start, 0, flt.state()
        else:  # from scratch: the untrained (or only warmed-up) weights are never a candidate
            best, best_epoch, best_state = (float("nan"), float("nan")), None, None
        if log:
            log(f"epoch 0: val loss {start[0]:.5f}, val tau within buckets {start[1]:.4f}")
        stopped, t_member = "epochs", time.perf_counter()
        for epoch in range(1, epochs + 1):
            total, steps = 0.0, 0
            for batch in epoch_batches(tr, bucket, batch_size, flops_bounded, rng):
                pairs = batch_pairs(loss_v[batch], bucket[batch], flops_bounded)
                if pairs is None:
                    continue
                z, cache = net.forward(ids[batch], rows[batch], keep=True)
                z = z.astype(np.float64)
                if loss_on == "logit":
                    loss, dz = pair_loss_grad(z, *pairs)
                else:
                    s = 1.0 / (1.0 + np.exp(-z))
                    loss, ds = pair_loss_grad(s, *pairs)
                    dz = ds * s * (1.0 - s)
                g = net.backward(cache, dz)
                for k in grads:
                    grads[k][...] = g[k[scope:]]
                for sol in solvers:
                    if weight_decay:
                        sol.weight_decay(weight_decay)
                    sol.update()
                total += loss
                steps += 1
            vl, vt = validate()
            if on_epoch is not None:
                on_epoch(epoch, flt)
            history.append({"epoch": epoch, "train_loss": total / steps if steps else None, "val_loss": vl,
                            "val_tau": vt, "seconds": time.perf_counter() - t0})
            if log:
                log(f"epoch {epoch}: train loss {history[-1]['train_loss']}, val loss {vl:.5f}, "
                    f"val tau within buckets {vt:.4f}")
            if not np.isfinite(history[-1]["train_loss"] if steps else 0.0):
                raise PathFilterError(f"training diverged at epoch {epoch} (train loss "
                                      f"{history[-1]['train_loss']}); lower lr={lr}")
            if best_epoch is None or better((vl, vt), best):
                best, best_epoch, best_state = (vl, vt), epoch, flt.state()
            elif epoch - best_epoch >= patience:
                stopped = "patience"
                break
            if max_seconds is not None and time.perf_counter() - t_member > max_seconds:
                stopped = "max_seconds"
                break
            for k, v in params.items():  # the solver may have replaced an array: refresh the views
                if views[k] is not v.d:
                    views = {kk: vv.d for kk, vv in params.items()}
                    grads = {kk: vv.g for kk, vv in params.items()}
                    net.p = {kk[scope:]: vv for kk, vv in views.items()}
                    flt.refresh()
                    break
        flt.set_state(best_state)
        return {"seed": int(member_seed), "wide_warm_up": warm, "best_epoch": int(best_epoch),
                "best_val_loss": float(best[0]), "best_val_tau": float(best[1]), "stopped": stopped,
                "epochs_run": history[-1]["epoch"]}, history

    members, infos, history = [], [], []
    for m in range(ensemble):
        sp = member_split(split, bucket, seed, m) if bagging else split
        flt = template if m == 0 else PathFilter(config, seed=seed + m)
        if base is not None:
            flt.set_state(base.member(m if base.n_members > 1 else 0).state(), where="initial filter")
        if log and ensemble > 1:
            log(f"ensemble member {m + 1}/{ensemble} (seed {seed + m})")
        info, hist = run_member(flt, seed + m, base is not None, sp.train, sp.val)
        info["n_val"] = int(len(sp.val))
        members.append(flt)
        infos.append(info)
        history.extend(dict(h, member=m) for h in hist) if ensemble > 1 else history.extend(hist)
    result_filter = members[0] if ensemble == 1 else PathFilter.ensemble_of(members)
    # the selection figures of the returned filter (the ensemble's own, on member 0's split; with
    # bagging the other members trained on some of those paths: an optimistic figure)
    z = result_filter.logits_ids(ids[va], rows[va])
    s = z if loss_on == "logit" else 1.0 / (1.0 + np.exp(-z))
    val_loss = pairwise_hinge_loss(s, loss_v[va], bucket[va], flops_bounded)
    val_tau = kendall_tau_within(s, -loss_v[va], bucket[va])
    best_epoch = infos[0]["best_epoch"] if ensemble == 1 else int(round(np.mean([i["best_epoch"] for i in infos])))
    stopped = ",".join(sorted({i["stopped"] for i in infos}))
    result_filter.config.meta = {"flops_bounded": bool(flops_bounded), "seed": int(seed), "epochs": int(epochs),
                                 "patience": int(patience), "lr": float(lr), "wide_lr": float(wide_lr),
                                 "loss_on": loss_on, "weight_decay": float(weight_decay),
                                 "batch_size": int(batch_size), "select": select, "ensemble": int(ensemble),
                                 "bagging": bool(bagging and ensemble > 1),
                                 "n_paths": len(pathset), "n_train": int(len(tr)), "n_val": int(len(va)),
                                 "n_test": int(len(split.test)), "fine_tuned": init is not None,
                                 "best_epoch": best_epoch, "best_val_loss": float(val_loss),
                                 "best_val_kendall_tau_within": float(val_tau)}
    return TrainResult(result_filter, buckets, tr, va, split.test, history, best_epoch, float(val_loss),
                       float(val_tau), stopped, time.perf_counter() - t0, infos)


def held_out_quality(result: TrainResult, pathset: PathSet, test: Optional[PathSet] = None,
                     test_name: str = "test path set") -> Dict:
    """Quality report on paths that neither trained the filter nor selected its checkpoint: ``test``
    when given, else the result's test split of ``pathset``. The report says which under
    ``computed_on``; with neither (no test split), the validation split is used and the report
    says that it selected the checkpoint (``held_out: false``)."""
    if test is not None:
        rep = result.quality(test)
        rep["computed_on"] = f"{test_name}: {len(test)} paths not used for training or checkpoint selection"
        rep["held_out"] = True
    elif len(result.test_index):
        rep = result.quality(pathset.subset(result.test_index))
        rep["computed_on"] = (f"test split: {len(result.test_index)} paths of the path set (stratified by "
                              "bucket) not used for training or checkpoint selection")
        rep["held_out"] = True
    else:
        rep = validation_quality(result, pathset)
    return rep


def validation_quality(result: TrainResult, pathset: PathSet) -> Dict:
    """Quality report on the validation split, which selected the checkpoint (an optimistic figure;
    the report says so)."""
    rep = result.quality(pathset.subset(result.val_index))
    rep["computed_on"] = (f"validation split: {len(result.val_index)} paths that selected the checkpoint "
                          "(optimistic; not a held-out figure)")
    rep["held_out"] = False
    return rep


__all__ = ["TrainResult", "Split", "train_path_filter", "evaluate", "split_indices", "resolve_buckets",
           "held_out_quality", "validation_quality", "quality_report", "epoch_batches", "batch_pairs", "DEFAULTS",
           "check_initial_filter", "path_tokens"]
