"""Quality of a path filter on a held-out path set (DetOFA Table 2 / A3).

Weakest-r detection, per ratio r (0.2, 0.25, 0.3, 0.4 by default), decided bucket by bucket:
for a bucket with n_b paths, k_b = floor(r * n_b + 0.5); the *true weak* paths are the k_b with
the highest validation loss, the *predicted weak* ones the k_b with the lowest score (ties broken
by position in the set, for both). Over all paths:

* precision = |true weak ∩ predicted weak| / |predicted weak|
* recall = |true weak ∩ predicted weak| / |true weak|
* accuracy = fraction of paths whose weak / not-weak label is predicted right.

Both sets have k_b members in every bucket, so precision equals recall by construction. The
paper's recall column (0.224 for precision 0.870 at r = 0.25) matches instead
|true weak ∩ predicted weak| / N (≈ r * precision); it is reported as ``detected_fraction``.

Rank agreement: Kendall's tau-b between score and -val_loss (a higher score should mean a lower
loss), over all paths and within each bucket (and the mean over buckets with >= 2 paths).

With ``flops`` given, the same numbers for the FLOPs-only ranking (score = FLOPs: the larger
path of a bucket is predicted better) are reported under ``flops_only`` as the baseline.
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np

from ..atomic import json_safe  # noqa: F401  (re-exported: reports are written with it)

RATIOS = (0.2, 0.25, 0.3, 0.4)


def kendall_tau(x, y) -> float:
    """Kendall's tau-b: sum over pairs of sign(dx) * sign(dy), over the square root of the number
    of pairs untied in x times the number untied in y. NaN with < 2 values or a constant input."""
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} vs {len(y)} values")
    n = len(x)
    if n < 2:
        return float("nan")
    conc = nx = ny = 0.0
    chunk = max(1, 2_000_000 // n)  # rows of the pair-sign matrices held at once
    for i in range(0, n, chunk):
        sx = np.sign(x[i:i + chunk, None] - x[None, :])
        sy = np.sign(y[i:i + chunk, None] - y[None, :])
        conc += float((sx * sy).sum())
        nx += float(np.abs(sx).sum())
        ny += float(np.abs(sy).sum())
    if nx == 0 or ny == 0:
        return float("nan")
    return conc / math.sqrt(nx * ny)  # every pair counted twice in all three sums


def weak_masks(scores, val_loss, bucket, ratio: float):
    """(true weak, predicted weak) boolean masks, decided per bucket as the module doc says."""
    s = np.asarray(scores, np.float64).reshape(-1)
    v = np.asarray(val_loss, np.float64).reshape(-1)
    b = np.asarray(bucket).reshape(-1)
    true = np.zeros(len(s), bool)
    pred = np.zeros(len(s), bool)
    for bk in np.unique(b):
        idx = np.flatnonzero(b == bk)
        k = int(math.floor(ratio * len(idx) + 0.5))
        if k == 0:
            continue
        true[idx[np.argsort(-v[idx], kind="stable")[:k]]] = True
        pred[idx[np.argsort(s[idx], kind="stable")[:k]]] = True
    return true, pred


def weak_detection(scores, val_loss, bucket, ratio: float) -> Dict[str, float]:
    true, pred = weak_masks(scores, val_loss, bucket, ratio)
    tp = int((true & pred).sum())
    n_pred, n_true = int(pred.sum()), int(true.sum())
    return {"accuracy": float((true == pred).mean()) if len(true) else float("nan"),
            "precision": tp / n_pred if n_pred else float("nan"),
            "recall": tp / n_true if n_true else float("nan"),
            "detected_fraction": tp / len(true) if len(true) else float("nan"),
            "n_weak": n_true}


def kendall_tau_per_bucket(x, y, bucket) -> Dict[str, float]:
    """Kendall's tau-b of x and y inside each bucket, keyed by the bucket index as a string."""
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    b = np.asarray(bucket).reshape(-1)
    out = {}
    for bk in np.unique(b):
        idx = np.flatnonzero(b == bk)
        out[str(int(bk))] = kendall_tau(x[idx], y[idx])
    return out


def kendall_tau_within(x, y, bucket) -> float:
    """The mean of ``kendall_tau_per_bucket`` over the buckets where it is defined (NaN if none)."""
    finite = [t for t in kendall_tau_per_bucket(x, y, bucket).values() if not math.isnan(t)]
    return float(np.mean(finite)) if finite else float("nan")


def _ranking(scores, val_loss, bucket, ratios) -> Dict:
    s = np.asarray(scores, np.float64).reshape(-1)
    v = np.asarray(val_loss, np.float64).reshape(-1)
    b = np.asarray(bucket).reshape(-1)
    per_bucket = kendall_tau_per_bucket(s, -v, b)
    finite = [t for t in per_bucket.values() if not math.isnan(t)]
    return {"kendall_tau": kendall_tau(s, -v),
            "kendall_tau_bucket": per_bucket,
            "kendall_tau_within": float(np.mean(finite)) if finite else float("nan"),
            "weak": {f"{r:g}": weak_detection(s, v, b, r) for r in ratios}}


def quality_report(scores, val_loss, bucket, flops: Optional[Sequence[float]] = None,
                   ratios: Sequence[float] = RATIOS) -> Dict:
    """The report as a JSON-ready dict: ``n``, ``bucket_sizes``, the filter's ranking numbers at
    the top level and, with ``flops``, the FLOPs-only baseline under ``flops_only``."""
    s = np.asarray(scores, np.float64).reshape(-1)
    v = np.asarray(val_loss, np.float64).reshape(-1)
    b = np.asarray(bucket).reshape(-1)
    if not len(s) == len(v) == len(b):
        raise ValueError(f"lengths differ: {len(s)} scores, {len(v)} losses, {len(b)} buckets")
    for r in ratios:
        if not 0 < r < 1:
            raise ValueError(f"ratio {r}: expected a value in (0, 1)")
    rep = {"n": int(len(s)),
           "bucket_sizes": {str(int(k)): int((b == k).sum()) for k in np.unique(b)}}
    rep.update(_ranking(s, v, b, ratios))
    if flops is not None:
        rep["flops_only"] = _ranking(np.asarray(flops, np.float64), v, b, ratios)
    return rep
