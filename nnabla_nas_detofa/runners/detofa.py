"""DetOFA end to end (Algorithm 1) as one NNablaNAS runner over one output folder.

Phases, each in its own sub-folder of the output folder, each reading the previous phase's files:

1. ``supernet/``: start from the network's weights (``pretrained`` / ``weights``, or scratch) and
   warm up for ``warmup_epochs`` with uniform sampling over A (``warmup.h5`` written at its end);
   from scratch, ``warmup_largest_epochs`` of them may train the largest path alone first, as
   once-for-all trains its full network before it shrinks;
0. ``filter_pretrain/`` (with ``filter_pretrain``): a path filter trained on the labelled paths of
   a source supernet (DETOFA.md §3.1: pre-trained on a source supernet's paths, fine-tuned on the
   target's), the initial filter of phase 2;
2. ``paths/``: ``paths_per_bucket`` paths per FLOPs bucket of A labelled with their validation
   loss on D_val, the path filter trained or fine-tuned from ``filter_init`` (or phase 0's);
3. ``pruning/``: operation scores, the pruning strategy and the path-pruning thresholds
   (``pruned_space.json``, Fig. 7 and Fig. 4);
4. ``supernet/`` again: path-pruned training until ``epoch`` (the whole supernet training:
   warm-up included, so the learning-rate schedule spans all of it, as the paper's 70 VOC epochs);
5. ``paths_final/``: paths drawn uniformly from Ã on the final supernet, labelled, and the filter
   re-trained (fine-tuned from phase 2's) for the search (§3.3);
6. Fig. 6: validation loss of ``figure_paths_per_bucket`` uniformly sampled paths per bucket from
   A and from Ã on the final supernet;
7. ``search/``: the search runner (``DetOFASearcher``) on Ã with phase 5's filter: the best path
   per FLOPs budget, its test AP, .nnp / ONNX files, ``pareto.json`` (``hparams.search``: the
   searcher's options; null skips the phase).

A killed run resumes at the phase and step where it stopped (each phase is done when its files
exist; the trainer and the labelling resume from their checkpoint / partial files) and ends with
the numbers of an uninterrupted run. ``phases.json`` keeps the wall time of each phase (summed
over resumed runs); ``summary.json`` gathers the figures.
"""
import json
import os
import time

from ..atomic import write_json_atomic
from ..path_filter import PathSet, train_path_filter
from ..path_filter.pathset import PathSetError
from ..path_filter.train import MIN_PATHS, TRAIN_OPTIONS, check_train_options, held_out_quality
from ..search.options import SEARCH_OPTIONS, check_search_options
from ..space import space_from_spec
from .base import DetOFARunner
from .path_filter_runner import (FILTER_OPTIONS, INIT_SPEC, DetOFAPathFilterRunner, check_enough_paths,
                                 check_init_fits)
from .pruned_trainer import PRUNING_OPTIONS, PrunedSpaceSampler, load_filter, load_pruned_space, run_pruning
from .schema import Int, Obj, SchemaError, Str
from .supernet_trainer import HPARAMS as TRAINER_HPARAMS
from .supernet_trainer import DetOFASupernetTrainer, Stage, UniformSampler

# hparams.filter_pretrain: the source path set and the pre-training's own schedule; the model
# switches and the ensemble size are hparams.filter's, so the pre-trained filter fits its fine-tuning
PRETRAIN_TRAINING_KEYS = ("epochs", "patience", "batch_size", "lr", "wide_lr", "weight_decay", "val_fraction",
                          "test_fraction", "max_seconds", "select", "warm_up")
PRETRAIN_OPTIONS = {"paths": Str(), **{k: TRAIN_OPTIONS[k] for k in PRETRAIN_TRAINING_KEYS}}
PRETRAIN_OPTIONS["test_fraction"] = FILTER_OPTIONS["test_fraction"]     # a held-out quality figure by default


def pretrain_options(filter_options: dict, pretrain: dict) -> dict:
    """``train_path_filter`` options of the pre-training: ``filter_pretrain``'s schedule with the
    model switches, ensemble, bagging, loss and pairing of ``filter`` (what its fine-tuning checks)."""
    opts = {k: v for k, v in filter_options.items() if k not in PRETRAIN_TRAINING_KEYS}
    opts.update({k: pretrain[k] for k in PRETRAIN_TRAINING_KEYS})
    return opts


def source_buckets(source: PathSet, target):
    """FLOPs buckets of the source paths: the target's when every source path lies in its range
    (the same network and input size), else equal-width buckets over the source's own FLOPs, so
    bucket k of the source is read as bucket k of the target (as fine-tuning reads it)."""
    from ..space.buckets import Buckets
    f = source.flops
    tol = 1e-6 * max(abs(target.hi), 1.0)
    if f.min() >= target.lo - tol and f.max() <= target.hi + tol:
        return target, "the target space's"
    return Buckets(float(f.min()), float(f.max()), target.n), "the source paths' own FLOPs range"


HPARAMS = {
    **{k: v for k, v in TRAINER_HPARAMS.items() if k != "space_schedule"},
    "warmup_epochs": Int(0, default=5),              # paper: VOC 5, COCO 10
    # the first epochs of the warm-up train the largest path of A alone (once-for-all's first stage),
    # then the rest of it samples A uniformly, channels sorted by importance first: for a supernet
    # trained from scratch (the paper starts from an ImageNet-trained one: 0)
    "warmup_largest_epochs": Int(0, default=0),
    "n_buckets": Int(1, 100, default=5),
    "paths_per_bucket": Int(1, default=100),         # paper: 500 paths in all
    "final_paths_per_bucket": Int(1, nullable=True, default=None),   # default: paths_per_bucket
    "filter_init": INIT_SPEC,                        # a pre-trained path filter (.h5) to fine-tune
    # or: pre-train it here on a source supernet's labelled paths ({"paths": FILE.jsonl, schedule})
    "filter_pretrain": Obj(PRETRAIN_OPTIONS, nullable=True, default=None),
    "filter": Obj(FILTER_OPTIONS),
    "pruning": Obj(PRUNING_OPTIONS),
    "repeatability_paths": Int(0, default=30),
    "figure_paths_per_bucket": Int(0, default=15),   # Fig. 4 / Fig. 6; 0: no Fig. 6 labelling
    "search": Obj(SEARCH_OPTIONS, nullable=True, default={}),   # the search phase's options; null: no search
}



class DetOFA(DetOFARunner):
    """NNablaNAS runner: every phase of DetOFA in order (see module doc)."""

    HPARAMS = HPARAMS

    @classmethod
    def needs_dval(cls, hparams):
        return True

    @classmethod
    def check_hparams(cls, hparams, where="hparams"):
        from .schema import SchemaError
        hp = super().check_hparams(hparams, where)
        if not hp["warmup_epochs"] < hp["epoch"]:
            raise SchemaError(f"{where}.warmup_epochs={hp['warmup_epochs']} must be below {where}.epoch="
                              f"{hp['epoch']} (epoch counts the whole supernet training, warm-up included)")
        if hp["warmup_largest_epochs"] and not hp["warmup_largest_epochs"] < hp["warmup_epochs"]:
            raise SchemaError(f"{where}.warmup_largest_epochs={hp['warmup_largest_epochs']} must be below "
                              f"{where}.warmup_epochs={hp['warmup_epochs']} (the labelled paths need a warm-up "
                              f"over the whole space after the largest path's epochs)")
        if hp["filter_pretrain"] is not None and hp["filter_init"] is not None:
            raise SchemaError(f"{where}.filter_pretrain and {where}.filter_init: give one initial filter, not both "
                              "(a file to fine-tune, or source paths to pre-train one on)")
        if hp["filter_init"] is not None:
            check_init_fits(hp["filter_init"], hp["filter"], space_from_spec(hp["space"], f"{where}.space"),
                            hp["n_buckets"], f"{where}.filter_init")
        if hp["filter_pretrain"] is not None:
            cls.read_source_paths(hp, where)
            check_train_options(pretrain_options(hp["filter"], hp["filter_pretrain"]), False,
                                f"{where}.filter_pretrain")
        if hp["filter_init"] is None and hp["filter_pretrain"] is None:
            check_enough_paths(hp["paths_per_bucket"], hp["n_buckets"], where)
        if hp["search"] is not None:
            check_search_options(hp["search"], f"{where}.search")
        return hp

    @staticmethod
    def read_source_paths(hp, where="hparams") -> PathSet:
        """``filter_pretrain.paths`` read as a path set of the space (SchemaError naming the key and
        the file's line on anything wrong), with enough paths to train on."""
        path = hp["filter_pretrain"]["paths"]
        key = f"{where}.filter_pretrain.paths"
        space = space_from_spec(hp["space"], f"{where}.space")
        if not os.path.isfile(path):
            raise SchemaError(f"{key}={path}: {'not a file' if os.path.exists(path) else 'no such file'} "
                              "(a JSON Lines path set: one "
                              "{\"arch\", \"flops\", \"val_loss\"} a line, e.g. a path-filter run's paths.jsonl)")
        try:
            source = PathSet.read(path, space)
        except (PathSetError, OSError) as err:
            raise SchemaError(f"{key}: {err}") from None
        if len(source) < MIN_PATHS:
            raise SchemaError(f"{key}={path}: {len(source)} paths; pre-training needs at least {MIN_PATHS}")
        return source

    @classmethod
    def check_settings(cls, hp, cfg, input_size, where="hparams"):
        """The search budgets lie in the space's FLOPs range (Ã's buckets are A's) and a latency table
        is of this network, before any work."""
        if hp["search"] is not None:
            from ..search.options import load_latency_table, plan_budgets
            from ..space import space_buckets
            s = hp["search"]
            buckets = space_buckets(space_from_spec(hp["space"], f"{where}.space"), cfg, input_size, hp["n_buckets"])
            plan_budgets(s["budgets"], s["n_budgets"], buckets, f"{where}.search")
            if s["latency_table"]:
                load_latency_table(s["latency_table"], cfg, input_size, f"{where}.search.latency_table")

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        self.space = space_from_spec(self.hparams["space"], "hparams.space")
        if self.hparams["search"] is not None and self.comm.n_procs > 1:
            from .schema import SchemaError
            raise SchemaError(f"hparams.search: the search phase runs in one process, not {self.comm.n_procs}; set "
                              "\"search\": null and search the finished run with 'python -m nnabla_nas_detofa search'")
        self._ledger_path = os.path.join(self.out, "phases.json")
        self.ledger = {}
        if os.path.isfile(self._ledger_path):
            with open(self._ledger_path, encoding="utf-8") as f:
                self.ledger = json.load(f)

    def train_on_batch(self, key="train"):
        raise RuntimeError("DetOFA trains through its supernet trainer")

    # --- bookkeeping ---------------------------------------------------------------------------
    def _sub_args(self, name: str) -> dict:
        args = dict(self.args)
        args["output_path"] = os.path.join(self.args["output_path"], name)
        return args

    def _done(self, name: str) -> bool:
        return bool(self.ledger.get(name, {}).get("done"))

    def _mark(self, name: str, t0: float):
        """Record phase ``name`` as done after the time since ``t0`` (added to earlier runs')."""
        entry = self.ledger.setdefault(name, {"seconds": 0.0, "runs": 0, "done": False})
        if not entry["done"]:
            entry["seconds"] = round(entry["seconds"] + time.time() - t0, 2)
            entry["runs"] += 1
            entry["done"] = True
            if self.comm.rank == 0:
                write_json_atomic(self._ledger_path, self.ledger, indent=1)

    def _phase(self, name: str, fn):
        """Run ``fn`` unless phase ``name`` is done; time it into ``phases.json``."""
        if self._done(name):
            return None
        t0 = time.time()
        result = fn()
        self._mark(name, t0)
        return result

    # --- phases ----------------------------------------------------------------------------------
    def _trainer(self) -> DetOFASupernetTrainer:
        hp = {k: self.hparams[k] for k in TRAINER_HPARAMS if k in self.hparams and k != "space_schedule"}
        hp.update({k: self.hparams[k] for k in ("batch_size_train", "batch_size_valid", "mini_batch_train",
                                                "mini_batch_valid", "input_shapes", "target_shapes",
                                                "print_frequency", "seed", "loss_weights", "bn_calib_images",
                                                "bn_calib_batch_size", "valid_images", "measurement_cache_mb")})
        t = DetOFASupernetTrainer(self.model, self.optimizer, self.regularizer, self.dataloader, hp,
                                  self._sub_args("supernet"))
        t._evaluator = self.evaluator
        return t

    def pretrain_filter(self):
        """Phase 0: the path filter trained on the source supernet's paths (``filter_pretrain``);
        writes ``filter_pretrain/path_filter.h5`` and ``quality.json`` (held-out figures)."""
        hp = self.hparams
        if self.comm.rank != 0:
            return None
        spec = hp["filter_pretrain"]
        out = os.path.join(self.out, "filter_pretrain")
        os.makedirs(out, exist_ok=True)
        source = self.read_source_paths(hp)
        from ..space import space_buckets
        buckets, which = source_buckets(source, space_buckets(self.space, self.model.config, self.input_size,
                                                              hp["n_buckets"]))
        self.log(f"Pre-training the path filter on {len(source)} paths of {spec['paths']} (buckets: {which})")
        result = train_path_filter(source, buckets=buckets, space=self.space, supernet=self.model.config,
                                   input_size=self.input_size, seed=hp["seed"], n_buckets=hp["n_buckets"],
                                   log=self.log, **pretrain_options(hp["filter"], spec))
        result.filter.save(os.path.join(out, "path_filter.h5"))
        quality = held_out_quality(result, source)
        write_json_atomic(os.path.join(out, "quality.json"), {
            "source_paths": spec["paths"], "paths": len(source), "buckets": buckets.to_dict(), "buckets_from": which,
            "filter_seconds": round(result.seconds, 1), "training": result.summary(), "best_epoch": result.best_epoch,
            "quality": quality}, indent=1)
        weak = quality["weak"].get("0.25", {})
        self.log(f"Path filter pre-trained in {result.seconds:.1f}s; on the {quality['computed_on']}: Kendall tau "
                 f"within buckets {quality['kendall_tau_within']}, weakest-25% precision {weak.get('precision')}")
        return result

    def _path_runner(self, name: str, m: int, init, pruned_space=None, repeat: int = 0):
        hp = {k: self.hparams[k] for k in ("batch_size_train", "batch_size_valid", "mini_batch_train",
                                            "mini_batch_valid", "input_shapes", "target_shapes", "print_frequency",
                                            "seed", "loss_weights", "bn_calib_images", "bn_calib_batch_size",
                                            "valid_images", "measurement_cache_mb", "space", "n_buckets")}
        hp.update({"paths_per_bucket": m, "init": init, "filter": self.hparams["filter"],
                   "repeatability_paths": repeat, "pruned_space": pruned_space})
        r = DetOFAPathFilterRunner(self.model, self.optimizer, self.regularizer, self.dataloader, hp,
                                   self._sub_args(name))
        r._evaluator = self.evaluator
        return r

    def _searcher(self, path_filter: str, pruned_space: str, weights: str):
        from .searcher import DetOFASearcher
        hp = {k: self.hparams[k] for k in ("batch_size_train", "batch_size_valid", "mini_batch_train",
                                            "mini_batch_valid", "input_shapes", "target_shapes", "print_frequency",
                                            "seed", "loss_weights", "bn_calib_images", "bn_calib_batch_size",
                                            "valid_images", "measurement_cache_mb", "space", "n_buckets")}
        hp.update(self.hparams["search"])
        hp.update({"path_filter": path_filter, "pruned_space": pruned_space, "training_run": self.out})
        s = DetOFASearcher(self.model, self.optimizer, self.regularizer, self.dataloader, hp, self._sub_args("search"))
        s._evaluator = self.evaluator
        s.weights = weights
        return s

    def run(self):
        hp = self.hparams
        warm, total = hp["warmup_epochs"], hp["epoch"]
        paths_dir = os.path.join(self.out, "paths")
        prune_dir = os.path.join(self.out, "pruning")
        final_dir = os.path.join(self.out, "paths_final")
        trainer = self._trainer()
        uniform = UniformSampler(self.space, hp["sampling"])
        largest = hp["warmup_largest_epochs"]
        warmup = [Stage(0, warm, uniform)]
        if largest:
            only = self.space.restrict({dp: [max(v)] for dp, v in self.space.choices.items()}, name="largest")
            warmup = [Stage(0, largest, UniformSampler(only, hp["sampling"])),
                      Stage(largest, warm - largest, uniform, reorganize=True)]
        trainer.set_stages(warmup + [Stage(warm, total - warm, uniform)])
        self.log_splits()

        # 0. the initial path filter, pre-trained on a source supernet's paths (seconds; first, so a
        # problem with it shows before the supernet trains)
        init = hp["filter_init"]
        if hp["filter_pretrain"] is not None:
            self._phase("filter_pretrain", self.pretrain_filter)
            init = os.path.join(self.out, "filter_pretrain", "path_filter.h5")

        # 1. warm-up
        t0 = time.time()
        trainer.train_until(warm)
        warm_h5 = os.path.join(trainer.out, "warmup.h5")
        if self.comm.rank == 0 and not os.path.isfile(warm_h5) and trainer.cur_epoch == warm:
            from ..atomic import atomic_path
            with atomic_path(warm_h5, suffix=".h5") as tmp:
                self.model.save_weights(tmp)
        self._mark("warmup", t0)

        # 2. labelled paths of A and the path filter
        self._phase("paths", lambda: self._path_runner("paths", hp["paths_per_bucket"], init,
                                                        repeat=hp["repeatability_paths"]).run())
        filter_h5 = os.path.join(paths_dir, "path_filter.h5")

        # 3. operation pruning and thresholds
        def prune():
            flt = load_filter(filter_h5, filter_h5)
            return run_pruning(self.space, self.model.config, self.input_size, flt, filter_h5, hp["n_buckets"],
                               hp["pruning"], hp["seed"], prune_dir, self.log, max(hp["figure_paths_per_bucket"], 1))
        self._phase("pruning", prune)
        pruned_json = os.path.join(prune_dir, "pruned_space.json")
        pruned = load_pruned_space(pruned_json, self.model.config, self.input_size, pruned_json)
        sampler = PrunedSpaceSampler(pruned, load_filter(filter_h5, filter_h5))

        # 4. path-pruned training
        t0 = time.time()
        trainer.set_stages(warmup + [Stage(warm, total - warm, sampler)])
        if not self._done("pruned_training"):
            trainer.train_until(total)
            trainer.callback_on_finish()
            self._mark("pruned_training", t0)

        # 5. the final supernet's paths of Ã and the filter for the search
        m_final = hp["final_paths_per_bucket"] or hp["paths_per_bucket"]
        self._phase("paths_final", lambda: self._path_runner("paths_final", m_final, filter_h5,
                                                              pruned_space=pruned_json).run())

        # 6. Fig. 6
        self._phase("figures", lambda: self.figure6(pruned, os.path.join(final_dir, "paths.jsonl")))

        # 7. the search on Ã with the final filter: a* per budget, its test AP, exported
        if hp["search"] is not None:
            self._phase("search", lambda: self._searcher(os.path.join(final_dir, "path_filter.h5"), pruned_json,
                                                         os.path.join(trainer.out, "supernet.h5")).run())
        if self.comm.rank == 0:
            self.write_summary(trainer, pruned)
        self.monitor.close()
        return json.load(open(os.path.join(self.out, "summary.json"))) if self.comm.rank == 0 else None

    # --- Fig. 6 and the summary -----------------------------------------------------------------
    def figure6(self, pruned, final_paths: str):
        """Validation loss of ``figure_paths_per_bucket`` paths per bucket drawn uniformly from A
        and from Ã (the latter: the first ones of the final labelled set, themselves uniform)."""
        k = self.hparams["figure_paths_per_bucket"]
        if not k:
            return None
        import numpy as np
        from ..pruning import PrunedSpace
        full = PrunedSpace(self.space, self.model.config, self.input_size, pruned.buckets,
                           [{} for _ in range(pruned.buckets.n)])
        gen = np.random.default_rng([self.hparams["seed"], 6])
        rows = []
        for b in range(pruned.buckets.n):
            archs, flops = full.sample_bucket(gen, b, k)
            for a, f in zip(archs.to_archs(), flops):
                rows.append({"space": "A", "bucket": b, "flops": float(f), "arch": a.to_dict(),
                             "val_loss": self.evaluator.validation_loss(a)})
        ps = PathSet.read(final_paths)
        per = {}
        for r in ps:
            per.setdefault(r.extra["bucket"], []).append(r)
        for b, recs in sorted(per.items()):
            for r in recs[:k]:
                rows.append({"space": "pruned", "bucket": b, "flops": r.flops, "arch": r.arch.to_dict(),
                             "val_loss": r.val_loss})
        out = os.path.join(self.out, "fig6_paths.json")
        if self.comm.rank == 0:
            write_json_atomic(out, rows, indent=1)
            plot_figure6(rows, os.path.join(self.out, "fig6_val_loss.png"))
        return rows

    def search_summary(self):
        """The search phase's figures (None when it did not run): seconds, pareto.json, AP per budget."""
        path = os.path.join(self.out, "search", "summary.json")
        if not self._done("search") or not os.path.isfile(path):
            return None
        s = json.load(open(path))
        return {"seconds": self.ledger["search"]["seconds"], "search_seconds": s["search_seconds"],
                "pareto": s["pareto"], "metric": s["metric"], "budgets": s["budgets"], "fullnet": s["fullnet"]}

    def write_summary(self, trainer, pruned):
        sup = json.load(open(os.path.join(trainer.out, "summary.json")))
        pr = json.load(open(os.path.join(self.out, "pruning", "pruning.json")))
        q1 = json.load(open(os.path.join(self.out, "paths", "quality.json")))
        q0_path = os.path.join(self.out, "filter_pretrain", "quality.json")
        q0 = json.load(open(q0_path)) if os.path.isfile(q0_path) else None
        q2 = json.load(open(os.path.join(self.out, "paths_final", "quality.json")))
        hist = sup["history"]
        warm = self.hparams["warmup_epochs"]
        pruned_epochs = [h for h in hist if h["epoch"] >= warm]
        acc = [h["sampler"]["path_pruning_acceptance"] for h in pruned_epochs
               if "sampler" in h and "path_pruning_acceptance" in h["sampler"]]
        sample_s = sum(h.get("sampling_seconds", 0.0) for h in pruned_epochs)
        train_s = sum(h.get("seconds", 0.0) for h in pruned_epochs)
        steps = sum(h.get("steps", 0) for h in pruned_epochs)
        fig6 = None
        if os.path.isfile(os.path.join(self.out, "fig6_paths.json")):
            rows = json.load(open(os.path.join(self.out, "fig6_paths.json")))
            fig6 = {s: float(sum(r["val_loss"] for r in rows if r["space"] == s) /
                             max(1, sum(1 for r in rows if r["space"] == s))) for s in ("A", "pruned")}
        summary = {
            "phases": self.ledger,
            "total_seconds": round(sum(v["seconds"] for v in self.ledger.values()), 1),
            "pruned_space": {"size_estimate": pr["size_estimate"], "full_space_size": pr["full_space_size"],
                             "strategy": pr["strategy"], "thresholds": pr["thresholds"]},
            "path_pruning_acceptance": float(sum(acc) / len(acc)) if acc else None,
            "sampling_seconds_per_step": sample_s / max(steps, 1),
            "sampling_share_of_step": sample_s / max(train_s, 1e-9),
            "test": sup["test"], "supernet": os.path.join(trainer.out, "supernet.h5"),
            "path_filter_for_search": os.path.join(self.out, "paths_final", "path_filter.h5"),
            "filter_quality": {"pretrain": q0["quality"] if q0 else None,
                               "warmup": q1.get("quality") or q1.get("quality_on_validation_split"),
                               "final": q2.get("quality") or q2.get("quality_on_validation_split")},
            "label_repeatability": q1.get("label_repeatability"),
            "mean_val_loss_fig6": fig6,
            "search": self.search_summary(),
            "history": hist,
        }
        write_json_atomic(os.path.join(self.out, "summary.json"), summary, indent=1)
        main = {k: {m: v.get(m) for m in ("mAP", "AP", "mflops") if m in v} for k, v in sup["test"].items()}
        self.log(f"DetOFA done in {summary['total_seconds']:.0f}s: |Ã| / |A| = "
                 f"{pr['size_estimate'].get('ratio') if pr['size_estimate'] else None}, path-pruning acceptance "
                 f"{summary['path_pruning_acceptance']}, test {main}")


def plot_figure6(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for space, c, m in (("A", "tab:gray", "o"), ("pruned", "tab:blue", "^")):
        sel = [r for r in rows if r["space"] == space]
        ax.scatter([r["flops"] for r in sel], [r["val_loss"] for r in sel], c=c, marker=m, s=18,
                   label="uniform from A" if space == "A" else "uniform from pruned space")
    ax.set_xlabel("MFLOPs")
    ax.set_ylabel("validation loss (final supernet)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

