"""The report's figures: Fig. 5 (AP of the searched paths vs MFLOPs, one line per run, the full
network marked) and Fig. 6 (validation loss of paths drawn uniformly from A and from the pruned
space, per FLOPs bucket, on DetOFA's final supernet). Written atomically as PNG."""
from typing import List

import numpy as np

from ..atomic import atomic_path
from .runs import Run

FIG5 = "fig5_ap_vs_mflops.png"
FIG6 = "fig6_val_loss.png"
METRIC_NAMES = {"mAP": "VOC mAP (%)", "AP": "COCO AP (%)"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def plot_fig5(runs: List[Run], path: str) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(runs):
        color = f"C{i % 10}"
        pts = sorted(r.points, key=lambda p: p.mflops)
        ax.plot([p.mflops for p in pts], [p.ap for p in pts], "-o", color=color, label=r.label, ms=5)
        if r.fullnet is not None:
            ax.plot([r.fullnet.mflops], [r.fullnet.ap], "*", color=color, ms=14, mec="k", mew=0.6,
                    label=f"{r.label}: full network")
    ax.set_xlabel("MFLOPs of the searched path")
    ax.set_ylabel(METRIC_NAMES.get(runs[0].metric, runs[0].metric))
    ax.set_title("Searched paths per FLOPs budget (Fig. 5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_fig6(runs: List[Run], path: str) -> None:
    """One panel per DetOFA run with ``fig6_paths.json``: per bucket, the paths of A (left) and of
    the pruned space (right), with their means."""
    runs = [r for r in runs if r.fig6]
    plt = _plt()
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    gen = np.random.default_rng(0)   # horizontal jitter only
    for ax, r in zip(axes[0], runs):
        for space, dx, c, m, name in (("A", -0.18, "tab:gray", "o", "uniform from A"),
                                      ("pruned", 0.18, "tab:blue", "^", "uniform from the pruned space")):
            sel = [row for row in r.fig6 if row["space"] == space]
            if not sel:
                continue
            b = np.array([row["bucket"] for row in sel], float)
            v = np.array([row["val_loss"] for row in sel], float)
            ax.scatter(b + dx + gen.uniform(-0.06, 0.06, len(b)), v, c=c, marker=m, s=16, alpha=0.7, label=name)
            for k in np.unique(b):
                ax.hlines(v[b == k].mean(), k + dx - 0.12, k + dx + 0.12, colors=c, lw=2.5)
        buckets = sorted({row["bucket"] for row in r.fig6})
        ax.set_xticks(buckets)
        ax.set_xlabel("FLOPs bucket (bars: mean)")
        ax.set_ylabel("validation loss (final supernet)")
        ax.set_title(f"{r.label} (Fig. 6)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
