"""Baseline rankers for the path filter: FLOPs only, ridge regression, an OFA-style MLP predictor.

Every ranker has the filter's interface, ``score(archs, flops=None, bucket=None)`` -> float64
scores, higher = better (lower expected validation loss), so ``train.evaluate`` and
``quality.quality_report`` apply unchanged.

* ``flops``: score = FLOPs (inside a bucket the larger path is predicted better).
* ``ridge``: ridge regression of the validation loss on ``choice_features`` (a one-hot of every
  decision's choice, the way once-for-all's accuracy predictor encodes archs) plus log FLOPs,
  features standardised on the training paths. The penalty is chosen from ``RIDGE_ALPHAS`` by the
  within-bucket Kendall tau on the validation split, then the model is refitted on training +
  validation paths (closed form), which can only make the baseline stronger.
* ``mlp``: once-for-all's accuracy predictor shape: 3 hidden layers of 400 units with ReLU and a
  linear output, on the same features, trained in numpy with Adam on the mean squared error of the
  standardised loss (mini-batches, seeded); early stopping on the validation split's within-bucket
  Kendall tau with patience and an epoch cap.

``fit_baseline(kind, pathset, ...)`` uses the same stratified train / validation / test split as
``train_path_filter`` for the same ``val_fraction``, ``test_fraction`` and ``seed``, so a filter and
the baselines can be compared on exactly the same held-out paths.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..space import DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch, Buckets
from .model import PathFilterError
from .numpy_net import N_CHOICES
from .pathset import PathSet
from .quality import kendall_tau_within

KINDS = ("flops", "ridge", "mlp")
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
N_CHOICE_FEATURES = N_CHOICES  # 2 + 6 x 3 + 4 x 3 + 18 x 3 = 86


def choice_features(archs: Sequence) -> np.ndarray:
    """(N, 86) one-hot of every choice: stem depth (2), the 6 width indices (3 each), the 4 stage
    depths (3 each), and the expand ratio of each of the 18 unit slots (3 each; all zero for a slot
    the path drops, so its ignored ratio never counts)."""
    out = np.zeros((len(archs), N_CHOICE_FEATURES), np.float64)
    for i, a in enumerate(archs):
        a = Arch.from_dict(a, where=f"arch {i}")
        col = 0
        out[i, col + STEM_DEPTH_CHOICES.index(a.d[0])] = 1.0
        col += len(STEM_DEPTH_CHOICES)
        for j in range(6):
            out[i, col + a.w[j]] = 1.0
            col += len(WIDTH_CHOICES)
        for s in range(N_STAGES):
            out[i, col + DEPTH_CHOICES.index(a.d[s + 1])] = 1.0
            col += len(DEPTH_CHOICES)
        for k in range(N_SLOTS):
            if a.slot_active(k):
                out[i, col + EXPAND_CHOICES.index(a.e[k])] = 1.0
            col += len(EXPAND_CHOICES)
    return out


def features(archs: Sequence, flops) -> np.ndarray:
    """``choice_features`` plus a last column log(FLOPs)."""
    f = _flops(archs, flops)
    return np.concatenate([choice_features(archs), np.log(f)[:, None]], axis=1)


def _flops(archs, flops) -> np.ndarray:
    if flops is None:
        raise PathFilterError("the baselines need the FLOPs of every arch (pass flops=...)")
    f = np.asarray(flops, np.float64).reshape(-1)
    if len(f) != len(archs):
        raise PathFilterError(f"{len(f)} FLOPs values for {len(archs)} archs")
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise PathFilterError("FLOPs values must be finite and positive")
    return f


class _Standardiser:
    def __init__(self, x: np.ndarray):
        self.mu = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd = np.where(sd > 1e-12, sd, 1.0)  # constant columns (a choice never / always made) stay 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu) / self.sd


# --- rankers ---------------------------------------------------------------------------------
class FlopsRanker:
    kind = "flops"

    def score(self, archs, flops=None, bucket=None) -> np.ndarray:
        return _flops(archs, flops).copy()


class RidgeRanker:
    """Predicted loss = standardised features @ coef + intercept; score = -prediction."""

    kind = "ridge"

    def __init__(self, alpha: float = 1.0):
        self.alpha = float(alpha)
        self.coef = self.intercept = self.std = None

    def fit_xy(self, x: np.ndarray, y: np.ndarray) -> "RidgeRanker":
        """Closed form: minimise |Z w + b - y|^2 + alpha |w|^2 (the intercept unpenalised), Z = the
        standardised features."""
        self.std = _Standardiser(x)
        z = self.std(x)
        ym = float(y.mean())
        a = z.T @ z + self.alpha * np.eye(z.shape[1])
        self.coef = np.linalg.solve(a, z.T @ (y - ym))
        self.intercept = ym  # the standardised columns have mean 0 on the fitted paths
        return self

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        return self.std(x) @ self.coef + self.intercept

    def score(self, archs, flops=None, bucket=None) -> np.ndarray:
        return -self.predict_x(features(archs, flops))


class MLPRanker:
    """OFA-style predictor: ``hidden`` ReLU layers (default 3 x 400) and a linear output, numpy."""

    kind = "mlp"

    def __init__(self, hidden: Sequence[int] = (400, 400, 400), seed: int = 0):
        self.hidden = tuple(int(h) for h in hidden)
        self.seed = int(seed)
        self.weights: List[np.ndarray] = []
        self.biases: List[np.ndarray] = []
        self.std = None
        self.y_mu, self.y_sd = 0.0, 1.0

    def init(self, n_in: int):
        """PyTorch ``nn.Linear``'s default initialisation (uniform in +-1/sqrt(fan_in)), seeded."""
        rng = np.random.RandomState(self.seed)
        sizes = (n_in,) + self.hidden + (1,)
        self.weights, self.biases = [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(rng.uniform(-bound, bound, (a, b)).astype(np.float32))
            self.biases.append(rng.uniform(-bound, bound, b).astype(np.float32))

    def forward(self, z: np.ndarray, keep: bool = False):
        acts = [z]
        h = z
        n = len(self.weights)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < n - 1:
                h = np.maximum(h, 0.0)
            acts.append(h)
        out = h[:, 0]
        return (out, acts) if keep else out

    def gradients(self, z: np.ndarray, y: np.ndarray):
        """(mean squared error, [dW...], [db...]) of standardised inputs ``z`` and targets ``y``."""
        out, acts = self.forward(z, keep=True)
        err = out - y
        loss = float(np.mean(err ** 2))
        d = (np.float32(2.0 / len(y)) * err[:, None]).astype(np.float32)
        gw, gb = [None] * len(self.weights), [None] * len(self.weights)
        for i in reversed(range(len(self.weights))):
            gw[i] = acts[i].T @ d
            gb[i] = d.sum(axis=0)
            if i > 0:
                d = (d @ self.weights[i].T) * (acts[i] > 0)
        return loss, gw, gb

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        return self.forward(self.std(x).astype(np.float32)).astype(np.float64) * self.y_sd + self.y_mu

    def score(self, archs, flops=None, bucket=None) -> np.ndarray:
        return -self.predict_x(features(archs, flops))


# --- fitting ---------------------------------------------------------------------------------
@dataclass
class BaselineResult:
    ranker: object
    buckets: Buckets
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    info: Dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.ranker.kind


def fit_ridge(x_tr, y_tr, b_tr, x_va, y_va, b_va, alphas: Sequence[float] = RIDGE_ALPHAS, refit: bool = True):
    """(ranker, info): alpha with the best validation within-bucket tau (ties: the larger alpha),
    refitted on train + validation when ``refit``."""
    best = None
    taus = {}
    for alpha in alphas:
        r = RidgeRanker(alpha).fit_xy(x_tr, y_tr)
        tau = kendall_tau_within(-r.predict_x(x_va), -y_va, b_va) if len(y_va) else float("nan")
        taus[f"{alpha:g}"] = tau
        key = (tau if np.isfinite(tau) else -np.inf, alpha)
        if best is None or key > best[0]:
            best = (key, alpha)
    alpha = best[1]
    if refit and len(y_va):
        r = RidgeRanker(alpha).fit_xy(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]))
    else:
        r = RidgeRanker(alpha).fit_xy(x_tr, y_tr)
    return r, {"alpha": alpha, "val_kendall_tau_within": taus, "refit_on_train_and_val": bool(refit and len(y_va))}


def fit_mlp(x_tr, y_tr, b_tr, x_va, y_va, b_va, hidden=(400, 400, 400), lr: float = 1e-3,
            weight_decay: float = 1e-4, batch_size: int = 64, epochs: int = 300, patience: int = 30,
            seed: int = 0):
    """(ranker, info): Adam on the MSE of standardised targets; the epoch with the best validation
    within-bucket tau (ties: lower validation MSE) is kept, training stops after ``patience``
    epochs without improvement or at ``epochs``."""
    m = MLPRanker(hidden, seed)
    m.std = _Standardiser(x_tr)
    m.y_mu, m.y_sd = float(y_tr.mean()), float(y_tr.std()) if y_tr.std() > 0 else 1.0
    # float32 (as the predictor would run in a framework): twice the BLAS speed of float64
    z_tr, z_va = m.std(x_tr).astype(np.float32), m.std(x_va).astype(np.float32)
    t_tr = ((y_tr - m.y_mu) / m.y_sd).astype(np.float32)
    t_va = ((y_va - m.y_mu) / m.y_sd).astype(np.float32)
    m.init(z_tr.shape[1])
    params = m.weights + m.biases
    mom = [np.zeros_like(p) for p in params]
    vel = [np.zeros_like(p) for p in params]
    b1, b2, eps = np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    rng = np.random.RandomState(seed + 1)
    step = 0

    def val_key():
        if not len(y_va):
            return (-np.inf, 0.0)
        p = m.forward(z_va)
        tau = kendall_tau_within(-p, -y_va, b_va)
        return (tau if np.isfinite(tau) else -np.inf, -float(np.mean((p - t_va) ** 2)))

    best_key, best_epoch, best = None, 0, None
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(z_tr))
        for i in range(0, len(order), batch_size):
            bt = order[i:i + batch_size]
            _, gw, gb = m.gradients(z_tr[bt], t_tr[bt])
            step += 1
            for j, (p, g) in enumerate(zip(params, gw + gb)):
                if weight_decay and j < len(m.weights):
                    g = g + np.float32(weight_decay) * p
                mom[j] = b1 * mom[j] + (1 - b1) * g
                vel[j] = b2 * vel[j] + (1 - b2) * g * g
                p -= np.float32(lr / (1 - 0.9 ** step)) * mom[j] / (np.sqrt(vel[j] / np.float32(1 - 0.999 ** step)) + eps)
        key = val_key()
        history.append(key[0])
        if best_key is None or key > best_key:
            best_key, best_epoch = key, epoch
            best = ([w.copy() for w in m.weights], [b.copy() for b in m.biases])
        elif epoch - best_epoch >= patience:
            break
    m.weights, m.biases = best
    return m, {"hidden": list(hidden), "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size,
               "best_epoch": best_epoch, "epochs_run": len(history), "best_val_kendall_tau_within": best_key[0]}


def fit_baseline(kind: str, pathset: PathSet, buckets: Optional[Buckets] = None, val_fraction: float = 0.2,
                 test_fraction: float = 0.0, seed: int = 0, n_buckets: int = 5, **options) -> BaselineResult:
    """Fit the ``kind`` baseline on the training split of ``pathset`` (validation split for model
    selection; the test split, with ``test_fraction`` > 0, untouched). ``buckets``: as for
    ``train_path_filter`` (the path set's FLOPs range when None)."""
    from .train import MIN_PATHS, resolve_buckets, split_indices
    if kind not in KINDS:
        raise PathFilterError(f"baseline kind {kind!r}: expected one of {', '.join(KINDS)}")
    if len(pathset) < MIN_PATHS:
        raise PathFilterError(f"path set has {len(pathset)} paths; a baseline needs at least {MIN_PATHS}")
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise PathFilterError(f"val_fraction={val_fraction}, test_fraction={test_fraction}: expected "
                              "0 < val_fraction, 0 <= test_fraction, val_fraction + test_fraction < 1")
    buckets = resolve_buckets(pathset, buckets, n_buckets=n_buckets)
    bucket = buckets.indices(pathset.flops)
    split = split_indices(bucket, val_fraction, seed, test_fraction)
    if kind == "flops":
        ranker, info = FlopsRanker(), {}
    else:
        x = features(pathset.archs, pathset.flops)
        y = pathset.val_loss
        tr, va = split.train, split.val
        args = (x[tr], y[tr], bucket[tr], x[va], y[va], bucket[va])
        if kind == "ridge":
            ranker, info = fit_ridge(*args, **options)
        else:
            ranker, info = fit_mlp(*args, seed=seed, **options)
    info = dict(info, kind=kind, n_train=int(len(split.train)), n_val=int(len(split.val)),
                n_test=int(len(split.test)), seed=int(seed))
    return BaselineResult(ranker, buckets, split.train, split.val, split.test, info)


__all__ = ["KINDS", "RIDGE_ALPHAS", "choice_features", "features", "FlopsRanker", "RidgeRanker", "MLPRanker",
           "BaselineResult", "fit_ridge", "fit_mlp", "fit_baseline"]
