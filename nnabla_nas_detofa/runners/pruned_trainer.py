"""Path-pruned supernet training (DetOFA Algorithm 1, lines 9-15) and the space-pruning runner.

``PrunedSpaceSampler`` draws each step's path uniformly from the pruned space Ã and re-draws while
the path filter scores it below its bucket's threshold (``pruning.PrunedSampler``); it is a
sampler for ``DetOFASupernetTrainer`` and reports, per epoch, the candidates drawn and the share
of scored paths that passed (the acceptance rate of path pruning).

* ``PrunedSamplingTrainer``: the supernet trainer on ``hparams.pruned_space`` (a
  ``pruned_space.json``) with the path filter ``hparams.path_filter`` applying the file's
  thresholds; ``start_epoch`` continues a schedule that began elsewhere (the warm-up).
* ``SpacePruner``: operation scores, pruning strategy and path-pruning thresholds from a trained
  path filter (Algorithm 1 lines 5-8), written as ``pruned_space.json`` with the paper's figures
  of operation scores (Fig. 7) and of kept / pruned paths (Fig. 4).
"""
import os
import time

import numpy as np

from ..atomic import write_json_atomic
from ..pruning import STRATEGIES, PrunedSpace, StepDrawer, filter_id, prune_space
from ..space import Arch, mflops, space_from_spec
from .base import DetOFARunner, space_spec
from .schema import Choice, Int, Num, Obj, Str
from .supernet_trainer import HPARAMS as TRAINER_HPARAMS
from .supernet_trainer import DetOFASupernetTrainer, Stage, step_rng

PRUNING_OPTIONS = {
    "strategy": Choice(STRATEGIES, default="flops_score_all"),
    "r_op": Num(0, 1, hi_open=True, nullable=True, default=None),    # "flops" / "flops_score_bucket"
    "r_op1": Num(0, 1, hi_open=True, nullable=True, default=None),   # "flops_score_all": paper 0.1
    "r_op2": Num(0, 1, hi_open=True, nullable=True, default=None),   # "flops_score_all": paper 0.3
    "n": Int(1, default=100),                                        # paths per (operation, bucket)
    "r_path": Num(0, 1, hi_open=True, default=0.25),                 # path pruning quantile
    "n_threshold": Int(1, default=1000),                             # paths per bucket for the thresholds
    "size_draws": Int(1, default=4000),                              # draws per bucket for |Ã|
}


def load_filter(path: str, where: str):
    from ..path_filter import PathFilter, PathFilterError
    try:
        return PathFilter.load(path)
    except PathFilterError as err:
        raise ValueError(f"{where}: {err}") from None


class PrunedSpaceSampler:
    """Trainer sampler over Ã (optionally path-pruned); see module doc."""

    def __init__(self, pruned: PrunedSpace, path_filter=None, name: str = "pruned", block: int = 64):
        self.pruned = pruned
        use = path_filter is not None and pruned.thresholds is not None
        self.sampler = pruned.sampler(scorer=path_filter if use else None, thresholds=pruned.thresholds if use else None)
        self.path_pruning = use
        self.name, self.block = name, int(block)
        self._drawers = {}
        self._reset()

    def _reset(self):
        self.draws = self.candidates = self.scored = 0
        self.seconds = 0.0

    def sample_step(self, seed: int, step: int) -> Arch:
        """The path of global step ``step``: drawn in blocks of ``block`` steps aligned on the step
        number (``pruning.StepDrawer``), so every rank and a resumed run draw the same paths and the
        path filter scores whole blocks at once."""
        drawer = self._drawers.get(seed)
        if drawer is None:
            drawer = self._drawers[seed] = StepDrawer(self.sampler, lambda t: step_rng(seed, t), self.block)
        t = time.perf_counter()
        sp = drawer.path(step)
        self.seconds += time.perf_counter() - t
        self.draws += 1
        self.candidates += sp.candidates
        self.scored += sp.scored
        return sp.arch

    def stats(self) -> dict:
        """Work per drawn path since the last call (then reset): candidates proposed, paths scored,
        and the acceptance rate of path pruning (paths kept / paths scored)."""
        out = {"paths": self.draws, "candidates_per_path": self.candidates / max(self.draws, 1),
               "path_pruning": self.path_pruning, "seconds": round(self.seconds, 4),
               "microseconds_per_path": 1e6 * self.seconds / max(self.draws, 1)}
        if self.path_pruning:
            out["scored_per_path"] = self.scored / max(self.draws, 1)
            out["path_pruning_acceptance"] = self.draws / max(self.scored, 1)
        self._reset()
        return out

    def extreme(self, largest: bool) -> Arch:
        """The largest (smallest) path of Ã: that of the choices kept in the top (bottom) bucket,
        which lands in that bucket (a bucket is never empty)."""
        b = self.pruned.buckets.n - 1 if largest else 0
        return self.pruned.kept_spaces[b].extreme(largest)

    def flops_range(self, cfg, size):
        return mflops(self.extreme(False), cfg, size), mflops(self.extreme(True), cfg, size)

    def describe(self) -> dict:
        est = self.pruned.size_estimate or {}
        return {"name": self.name, "pruned_space": True, "path_pruning": self.path_pruning,
                "size_estimate": est, "full_space": self.pruned.space.to_dict(),
                "full_space_size": self.pruned.space.size()}


def load_pruned_space(path: str, cfg, input_size: int, where: str) -> PrunedSpace:
    from ..pruning import PruningError
    try:
        return PrunedSpace.load(path, cfg=cfg, input_size=input_size)
    except PruningError as err:
        raise ValueError(f"{where}: {err}") from None


class PrunedSamplingTrainer(DetOFASupernetTrainer):
    """NNablaNAS runner: supernet training on a pruned space with path pruning (see module doc)."""

    HPARAMS = {**{k: v for k, v in TRAINER_HPARAMS.items() if k not in ("space", "space_schedule", "sampling")},
               "pruned_space": Str(),                      # pruned_space.json
               "path_filter": Str(nullable=True, default=None),   # the filter of its thresholds (None: no path pruning)
               "start_epoch": Int(0, default=0)}           # epochs of the schedule done before (the warm-up)

    def _default_stages(self, hp):
        return []

    def callback_on_start(self):
        if not self.stages:
            hp = self.hparams
            pruned = load_pruned_space(hp["pruned_space"], self.model.config, self.input_size, "hparams.pruned_space")
            flt = load_filter(hp["path_filter"], "hparams.path_filter") if hp["path_filter"] else None
            start = hp["start_epoch"]
            if start >= hp["epoch"]:
                raise ValueError(f"hparams.start_epoch={start} must be below hparams.epoch={hp['epoch']}")
            self.stages = [Stage(start, hp["epoch"] - start, PrunedSpaceSampler(pruned, flt))]
            if self.cur_epoch < start:
                self.cur_epoch = start
                opt = self.optimizer["train"]
                opt._iter = start * self.one_epoch_train   # the schedule continues from the warm-up
        super().callback_on_start()


class SpacePruner(DetOFARunner):
    """NNablaNAS runner: prune the search space with a trained path filter (see module doc)."""

    HPARAMS = {"space": space_spec(), "n_buckets": Int(1, 100, default=5), "path_filter": Str(),
               "pruning": Obj(PRUNING_OPTIONS), "figure_paths_per_bucket": Int(1, default=15)}

    def train_on_batch(self, key="train"):
        raise RuntimeError("SpacePruner trains nothing")

    def run(self):
        hp = self.hparams
        flt = load_filter(hp["path_filter"], "hparams.path_filter")
        pruned = run_pruning(space_from_spec(hp["space"]), self.model.config, self.input_size, flt, hp["path_filter"],
                             hp["n_buckets"], hp["pruning"], hp["seed"], self.out, self.log,
                             hp["figure_paths_per_bucket"])
        self.monitor.close()
        return pruned


def run_pruning(space, cfg, input_size, flt, filter_file, n_buckets, opts, seed, out, log, figure_paths=15):
    """Operation pruning + thresholds; writes ``out/pruned_space.json``, ``out/pruning.json`` and the
    figures; returns the PrunedSpace."""
    t0 = time.time()
    pruned = prune_space(space, cfg, input_size, flt, strategy=opts["strategy"], r_op=opts["r_op"],
                         r_op1=opts["r_op1"], r_op2=opts["r_op2"], n=opts["n"], n_buckets=n_buckets,
                         r_path=opts["r_path"], n_threshold=opts["n_threshold"], seed=seed,
                         size_draws=opts["size_draws"], scorer_id=filter_id(filter_file))
    seconds = time.time() - t0
    os.makedirs(out, exist_ok=True)
    pruned.save(os.path.join(out, "pruned_space.json"))
    est = pruned.size_estimate or {}
    report = {"seconds": round(seconds, 2), "strategy": pruned.strategy, "size_estimate": est,
              "full_space_size": space.size(), "thresholds": pruned.thresholds.to_dict() if pruned.thresholds else None}
    fig4 = plot_kept_paths(pruned, flt, os.path.join(out, "fig4_kept_paths.png"), figure_paths, seed)
    report["fig4_paths"] = fig4
    plot_operation_scores(pruned, os.path.join(out, "fig7_operation_scores.png"))
    write_json_atomic(os.path.join(out, "pruning.json"), report, indent=1)
    ratio = est.get("ratio")
    log(f"Pruned space: strategy {opts['strategy']}, |Ã| / |A| = {ratio if ratio is not None else 'n/a'}; "
        f"path-pruning thresholds {pruned.thresholds.values if pruned.thresholds else None} ({seconds:.1f}s)")
    return pruned


def plot_operation_scores(pruned: PrunedSpace, path: str):
    """Fig. 7: operation scores per decision and choice, one panel per FLOPs bucket; pruned ones marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r.to_dict() for r in (pruned.scores or [])]
    if not rows:
        return
    decisions = list(dict.fromkeys(r["decision"] for r in rows))
    nb = pruned.buckets.n
    fig, axes = plt.subplots(nb, 1, figsize=(max(8, 0.45 * len(decisions)), 2.2 * nb), sharex=True, squeeze=False)
    for b in range(nb):
        ax = axes[b][0]
        for r in rows:
            if r["bucket"] != b or r.get("mean") is None:
                continue
            x = decisions.index(r["decision"])
            choice = tuple(r["choice"]) if isinstance(r["choice"], list) else r["choice"]
            kept = choice in pruned.kept[b].get(r["decision"], ())
            ax.scatter(x, r["mean"], c="tab:blue" if kept else "tab:red", marker="o" if kept else "x", s=18)
        lo, hi = pruned.buckets.bounds(b)
        ax.set_ylabel(f"b{b}\n{lo:.0f}-{hi:.0f}")
    axes[-1][0].set_xticks(range(len(decisions)))
    axes[-1][0].set_xticklabels(decisions, rotation=90, fontsize=7)
    axes[0][0].set_title("operation scores (mean filter score; x = pruned) per FLOPs bucket (MFLOPs)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_kept_paths(pruned: PrunedSpace, flt, path: str, per_bucket: int, seed: int) -> list:
    """Fig. 4: filter scores of ``per_bucket`` paths per bucket drawn uniformly from Ã, marked kept
    (score >= threshold) or pruned. Returns the plotted points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if pruned.thresholds is None:
        return []
    points = []
    rng = np.random.default_rng([seed, 4])
    for b in range(pruned.buckets.n):
        archs, flops = pruned.sample_bucket(rng, b, per_bucket)
        archs = archs.to_archs()
        scores = flt.score(archs, flops=flops, bucket=np.full(len(archs), b))
        for a, f, s in zip(archs, flops, scores):
            points.append({"arch": a.to_dict(), "flops": float(f), "bucket": b, "score": float(s),
                           "kept": bool(s >= pruned.thresholds.values[b])})
    fig, ax = plt.subplots(figsize=(7, 4))
    for kept, c, m in ((True, "tab:blue", "o"), (False, "tab:red", "x")):
        sel = [p for p in points if p["kept"] == kept]
        ax.scatter([p["flops"] for p in sel], [p["score"] for p in sel], c=c, marker=m, s=20,
                   label="kept" if kept else "pruned")
    for b in range(pruned.buckets.n):
        lo, hi = pruned.buckets.bounds(b)
        ax.hlines(pruned.thresholds.values[b], lo, hi, colors="gray", linestyles="dashed")
    ax.set_xlabel("MFLOPs")
    ax.set_ylabel("path filter score")
    ax.set_title("paths of the pruned space: kept / pruned by the path filter")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return points
