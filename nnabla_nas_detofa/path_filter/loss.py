"""FLOPs-bounded pairwise ranking loss (DetOFA Eq. 4-5).

Over unordered pairs (a, a') of distinct paths, in the same FLOPs bucket (``flops_bounded``) or
any buckets (the ablation): ``g = s(a) - s(a')``, ``t = +1`` if ``val_loss(a) <= val_loss(a')``
else ``-1``, ``L = max(0, 1 - t * g)^2``, averaged over the pairs. A pair is taken once, with
``a`` the path listed first (which sets ``t`` for equal losses).
"""
from typing import Tuple

import numpy as np


def pair_targets(val_loss, bucket, flops_bounded: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """(T, M): ``T[i, j]`` = +1 if ``val_loss[i] <= val_loss[j]`` else -1; ``M[i, j]`` = 1 for the
    pairs that count (i < j, same bucket when ``flops_bounded``), else 0. Both (n, n) float32."""
    v = np.asarray(val_loss, np.float64).reshape(-1)
    b = np.asarray(bucket).reshape(-1)
    if len(v) != len(b):
        raise ValueError(f"{len(v)} losses for {len(b)} bucket indices")
    t = np.where(v[:, None] <= v[None, :], 1.0, -1.0).astype(np.float32)
    m = np.triu(np.ones((len(v), len(v)), np.float32), k=1)
    if flops_bounded:
        m *= (b[:, None] == b[None, :])
    return t, m


def pairwise_hinge_loss(scores, val_loss, bucket, flops_bounded: bool = True) -> float:
    """The loss in numpy; NaN when no pair counts."""
    s = np.asarray(scores, np.float64).reshape(-1)
    t, m = pair_targets(val_loss, bucket, flops_bounded)
    n = m.sum()
    if n == 0:
        return float("nan")
    g = s[:, None] - s[None, :]
    return float((m * np.maximum(0.0, 1.0 - t * g) ** 2).sum() / n)


def pairwise_hinge_loss_nn(scores, targets, weights):
    """The same loss as an NNabla graph: ``scores`` (B,) Variable, ``targets`` (B, B) the T matrix,
    ``weights`` (B, B) the pair mask divided by the number of pairs (so the sum is the mean)."""
    import nnabla.functions as F
    b = scores.shape[0]
    g = F.broadcast(F.reshape(scores, (b, 1)), (b, b)) - F.broadcast(F.reshape(scores, (1, b)), (b, b))
    return F.sum(weights * F.relu(1.0 - targets * g) ** 2)
