"""Search runner (DetOFA §3.3): the best path per FLOPs budget, measured on the test split and exported.

For each budget tau (MFLOPs; default: the upper edges of the space's FLOPs buckets) inside
bucket b = [lo_b, hi_b] of the space, a search (regularized evolution by default) finds the
path a* that maximises the fitness under lo_b <= FLOPs(a) <= tau (and the parameter / latency
limits when given): the path filter's score in bucket b (the FLOPs-bounded loss ranks paths of
one bucket only), or, for small studies, minus the true validation loss. Each a* is then
measured on the test split with BatchNorm re-calibrated on the run's fixed calibration set
(VOC07 mAP / COCO AP), and exported as .nnp and ONNX (``export.export_path``: checked numerically
before written). The largest path of the space ("fullnet") is measured the same way.

The filter: ``path_filter`` (a .h5 of ``path-filter`` / the path-filter runner, e.g. the
DetOFA run's ``paths_final/path_filter.h5``), or, when null, one trained here by the path-filter
runner on ``paths_per_bucket`` labelled paths per bucket (in ``OUT/paths``). ``pruned_space``: the
search runs on Ã (``pruning.PrunedSpace``), buckets and all.

Outputs: ``budget_{i}/`` (``arch.json``, ``detector.nnp``, ``detector.onnx``, ``search.json``,
``result.json``), ``fullnet.json``, ``pareto.json`` (layout: ``PARETO_FORMAT``), ``pareto.png``,
``summary.json``. A budget is done when its ``result.json`` exists (written last, atomically), so
a killed run resumes at the first unfinished budget and ends with the files of an uninterrupted one.
"""
import os
import time

import numpy as np

from ..atomic import write_json_atomic
from ..reading import read_json
from ..search.options import (SEARCH_OPTIONS, check_search_options, load_latency_table, plan_budgets,
                              search_buckets)
from ..space import mflops, param_count, space_from_spec
from .base import DetOFARunner, space_spec
from .path_filter_runner import FILTER_OPTIONS, DetOFAPathFilterRunner
from .schema import Int, Obj, SchemaError, Str

PARETO_FORMAT = "nnabla_nas_detofa.pareto"
PARETO_VERSION = 1
HPARAMS = {
    **SEARCH_OPTIONS,
    "space": space_spec(),
    "n_buckets": Int(1, 100, default=5),
    "path_filter": Str(nullable=True, default=None),        # null: label paths and train one (OUT/paths)
    "paths_per_bucket": Int(1, default=20),                 # labelled paths per bucket when path_filter is null
    "filter": Obj(FILTER_OPTIONS),                          # its training options
    "pruned_space": Str(nullable=True, default=None),       # search on Ã
    "training_run": Str(nullable=True, default=None),       # recorded in pareto.json (default: found from weights)
}


def _check_file(path, where, what):
    if path is not None and not os.path.isfile(path):
        raise SchemaError(f"{where}={path!r}: no such file ({what})")


def metric_key(metrics: dict) -> str:
    """The headline key of an evaluation's metrics (VOC: mAP, COCO: AP)."""
    for k in ("mAP", "AP"):
        if k in metrics:
            return k
    raise ValueError(f"no mAP or AP in the metrics {sorted(metrics)}")


class DetOFASearcher(DetOFARunner):
    """NNablaNAS runner: constrained search per FLOPs budget, test-split AP and export (see module doc)."""

    HPARAMS = HPARAMS

    @classmethod
    def check_hparams(cls, hparams: dict, where: str = "hparams") -> dict:
        hp = super().check_hparams(hparams, where)
        check_search_options(hp, where)
        _check_file(hp["pruned_space"], f"{where}.pruned_space", "a pruned_space.json")
        if hp["path_filter"] is not None:
            from .pruned_trainer import load_filter
            _check_file(hp["path_filter"], f"{where}.path_filter", "a path filter .h5")
            try:
                load_filter(hp["path_filter"], f"{where}.path_filter")
            except ValueError as err:
                raise SchemaError(str(err)) from None
        else:
            from ..path_filter.train import check_train_options
            check_train_options(hp["filter"], False, f"{where}.filter")
        return hp

    @classmethod
    def check_settings(cls, hp: dict, cfg, input_size: int, where: str = "hparams"):
        """(pruned space, buckets, budget plan, latency table) of checked hparams for the network
        ``cfg`` at ``input_size``: a pruned space or latency table of other settings, or a budget
        outside the space's FLOPs range, is a SchemaError (the launcher calls this before any data
        is read)."""
        pruned = None
        if hp["pruned_space"]:
            from .pruned_trainer import load_pruned_space
            try:
                pruned = load_pruned_space(hp["pruned_space"], cfg, input_size, f"{where}.pruned_space")
            except ValueError as err:
                raise SchemaError(str(err)) from None
        latency = load_latency_table(hp["latency_table"], cfg, input_size, f"{where}.latency_table") \
            if hp["latency_table"] else None
        space = space_from_spec(hp["space"], f"{where}.space")
        buckets = search_buckets(space, cfg, input_size, hp["n_buckets"], pruned)
        return pruned, buckets, plan_budgets(hp["budgets"], hp["n_budgets"], buckets, where), latency

    @classmethod
    def needs_dval(cls, hparams):
        # always: the run's measurement sets are then those of the DetOFA / path-filter runs (same split)
        return True

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        hp = self.hparams
        if self.comm.n_procs > 1:
            raise SchemaError(f"DetOFASearcher runs in one process, not {self.comm.n_procs} (run it without mpirun)")
        self.space = space_from_spec(hp["space"], "hparams.space")
        self.pruned, self.buckets, self.plan, self.latency = self.check_settings(hp, model.config, self.input_size)
        self.weights = self._weights_of_experiment()

    def train_on_batch(self, key="train"):
        raise RuntimeError("DetOFASearcher does not train the supernet")

    def _weights_of_experiment(self):
        """The network's weight file, as the experiment of this output folder names it."""
        path = os.path.join(self.out, "experiment.json")
        if not os.path.isfile(path):
            return None
        net = next(iter(read_json(path, ValueError, "experiment file").get("network", {}).values()), {})
        return net.get("weights")

    def training_run(self):
        if self.hparams["training_run"]:
            return self.hparams["training_run"]
        if not self.weights:
            return None
        folder = os.path.dirname(os.path.abspath(self.weights))
        for cand in (os.path.dirname(folder), folder):   # a DetOFA run's supernet/, or a trainer's folder
            if os.path.isfile(os.path.join(cand, "run.json")):
                return cand
        return None

    # --- the path filter ----------------------------------------------------------------------
    def path_filter_file(self) -> str:
        """``path_filter``, or the filter trained here by the path-filter runner (OUT/paths)."""
        hp = self.hparams
        if hp["path_filter"]:
            return hp["path_filter"]
        out = os.path.join(self.out, "paths")
        h5 = os.path.join(out, "path_filter.h5")
        if not (os.path.isfile(h5) and os.path.isfile(os.path.join(out, "quality.json"))):
            sub = {k: hp[k] for k in ("batch_size_train", "batch_size_valid", "mini_batch_train", "mini_batch_valid",
                                       "input_shapes", "target_shapes", "print_frequency", "seed", "loss_weights",
                                       "bn_calib_images", "bn_calib_batch_size", "valid_images",
                                       "measurement_cache_mb", "space", "n_buckets", "paths_per_bucket", "filter",
                                       "pruned_space")}
            sub["repeatability_paths"] = 0
            args = dict(self.args, output_path=os.path.join(self.args["output_path"], "paths"))
            r = DetOFAPathFilterRunner(self.model, self.optimizer, self.regularizer, self.dataloader, sub, args)
            r._evaluator = self.evaluator
            self.log(f"No path filter given: labelling {hp['paths_per_bucket']} paths per bucket and training one "
                     f"in {out}")
            r.run()
        return h5

    # --- one budget ---------------------------------------------------------------------------
    def search_space(self, b: int):
        """The space the search of bucket ``b`` samples from: bucket ``b`` of Ã (or of A)."""
        from ..pruning import PrunedSpace
        from ..search.bucket_space import BucketSpace
        if self.pruned is not None:
            return BucketSpace(self.pruned, b)
        full = PrunedSpace(self.space, self.model.config, self.input_size, self.buckets,
                           [{} for _ in range(self.buckets.n)])   # A, sampled per bucket
        return BucketSpace(full, b, contains=self.space.contains)

    def constraints(self, lo: float, tau: float):
        from ..search import flops_constraint, latency_constraint, params_constraint
        cfg, hp = self.model.config, self.hparams
        out = [flops_constraint(tau, cfg, self.input_size, min_mflops=lo)]
        if hp["max_params"] is not None:
            out.append(params_constraint(hp["max_params"], cfg))
        if self.latency is not None:
            out.append(latency_constraint(hp["max_latency_ms"], self.latency, cfg=cfg, input_size=self.input_size))
        return out

    def fitness(self, flt, b: int):
        from ..search import path_filter_fitness
        if self.hparams["fitness"] == "val_loss":
            ev = self.evaluator

            def val_loss_fitness(archs):
                return -np.asarray([ev.validation_loss(a) for a in archs], np.float64)
            return val_loss_fitness
        return path_filter_fitness(flt, self.model.config, self.input_size, bucket=b)

    def search(self, flt, b: int, lo: float, tau: float):
        from ..search import random_search, regularized_evolution, truncation_evolution
        hp = self.hparams
        space, fit, cons = self.search_space(b), self.fitness(flt, b), self.constraints(lo, tau)
        P, G, seed = hp["population"], hp["generations"], hp["seed"]
        if hp["algorithm"] == "regularized":
            return regularized_evolution(space, fit, cons, population_size=P, sample_size=hp["sample"],
                                         generations=G, seed=seed)
        if hp["algorithm"] == "truncation":
            return truncation_evolution(space, fit, cons, population_size=P, generations=G, seed=seed)
        return random_search(space, fit, cons, n_calls=P * (G + 1), seed=seed)

    def measure(self, arch) -> dict:
        """MFLOPs, parameters, table latency and the test-split metrics of a path."""
        cfg = self.model.config
        t0 = time.time()
        test = self.evaluator.evaluate(self.dataloader["test"], "test", arch)
        return {"mflops": mflops(arch, cfg, self.input_size), "params": param_count(arch, cfg),
                "latency_ms": float(self.latency.predict(arch)) if self.latency is not None else None,
                "test": test, "test_seconds": round(time.time() - t0, 2)}

    def settings_key(self, flt_file) -> dict:
        """What a budget's result depends on (a resumed run refuses results of other settings)."""
        hp = self.hparams
        return {k: hp[k] for k in ("algorithm", "population", "sample", "generations", "fitness", "seed",
                                   "pruned_space", "max_params", "latency_table", "max_latency_ms", "export")} | \
            {"path_filter": os.path.abspath(flt_file) if flt_file else None, "weights": self.weights,
             "input_size": self.input_size}

    def run_budget(self, i: int, tau: float, b: int, lo: float, flt, flt_file) -> dict:
        from ..export import export_path
        hp = self.hparams
        folder = f"budget_{i}"
        d = os.path.join(self.out, folder)
        res_path = os.path.join(d, "result.json")
        key = self.settings_key(flt_file)
        if os.path.isfile(res_path):
            done = read_json(res_path, ValueError, "budget result")
            if done.get("settings") != key or done["entry"]["budget_mflops"] != tau:
                raise SchemaError(f"{res_path}: a result of other search settings or budget; use a new output "
                                  "folder (or remove it to search again)")
            self.log(f"budget {i} ({tau:.2f} MFLOPs): done before, kept")
            return done["entry"]
        os.makedirs(d, exist_ok=True)
        t0 = time.time()
        result = self.search(flt, b, lo, tau)
        seconds = time.time() - t0
        arch = result.best_arch
        result.save(os.path.join(d, "search.json"))
        write_json_atomic(os.path.join(d, "arch.json"), arch.to_dict(), indent=1)
        self.log(f"budget {i}: {tau:.2f} MFLOPs in bucket {b} [{lo:.2f}, {tau:.2f}]: {hp['algorithm']} found "
                 f"fitness {result.best_fitness:.5f} after {result.calls} calls in {seconds:.1f}s")
        m = self.measure(arch)
        files, export_s = {}, {}
        for fmt in hp["export"]:
            name = f"detector.{fmt}"
            rep = export_path(self.model, os.path.join(d, name), fmt, self.input_size, arch=arch,
                              evaluator=self.evaluator, metadata={"budget_mflops": tau, "weights": self.weights})
            files[fmt] = f"{folder}/{name}"
            export_s[fmt] = rep["seconds"]
        entry = {"budget_mflops": tau, "bucket": b, "flops_range": [lo, tau], "arch": arch.to_dict(),
                 "mflops": m["mflops"], "params": m["params"], "latency_ms": m["latency_ms"],
                 "fitness": result.best_fitness, "calls": result.calls, "search_seconds": round(seconds, 2),
                 "test": m["test"], "dir": folder, "files": files}
        main = m["test"].get(metric_key(m["test"]))
        self.log(f"budget {i}: {m['mflops']:.2f} MFLOPs, {m['params'] / 1e6:.3f} M parameters, test "
                 f"{metric_key(m['test'])} {main} (measured in {m['test_seconds']}s); exported "
                 + ", ".join(f"{k} in {v:.1f}s" for k, v in export_s.items()))
        write_json_atomic(res_path, {"settings": key, "entry": entry,
                                     "timings": {"test_seconds": m["test_seconds"], "export_seconds": export_s}},
                          indent=1)
        return entry

    def run_fullnet(self):
        path = os.path.join(self.out, "fullnet.json")
        arch = self.space.extreme(True)
        if os.path.isfile(path):
            done = read_json(path, ValueError, "fullnet result")
            if done.get("arch") == arch.to_dict() and done.get("weights") == self.weights:
                return {k: done[k] for k in ("arch", "mflops", "params", "test")}
        m = self.measure(arch)
        entry = {"arch": arch.to_dict(), "mflops": m["mflops"], "params": m["params"], "test": m["test"]}
        write_json_atomic(path, dict(entry, weights=self.weights, test_seconds=m["test_seconds"]), indent=1)
        return entry

    # --- the run ----------------------------------------------------------------------------------
    def run(self):
        from .pruned_trainer import load_filter
        hp = self.hparams
        t0 = time.time()
        self.callback_on_start()
        self.log(f"Search: {len(self.plan)} budget(s) " + ", ".join(f"{t:.2f}" for t, _, _ in self.plan)
                 + f" MFLOPs over {self.buckets.n} buckets [{self.buckets.lo:.2f}, {self.buckets.hi:.2f}] of "
                 + ("the pruned space" if self.pruned is not None else f"space {self.space.name!r}"))
        flt_file = self.path_filter_file() if hp["fitness"] == "path_filter" else hp["path_filter"]
        flt = load_filter(flt_file, flt_file) if hp["fitness"] == "path_filter" else None
        if flt is not None:
            own = flt.config.buckets
            if flt.config.budget and (own.n != self.buckets.n or not np.allclose([own.lo, own.hi],
                                                                                  [self.buckets.lo, self.buckets.hi])):
                raise SchemaError(f"hparams.path_filter={flt_file}: the filter's FLOPs buckets {own.to_dict()} are not "
                                  f"the search's {self.buckets.to_dict()} (set n_buckets / pruned_space as the filter "
                                  "was trained)")
        entries = [self.run_budget(i, tau, b, lo, flt, flt_file) for i, (tau, b, (lo, _)) in enumerate(self.plan)]
        full = self.run_fullnet() if hp["test_fullnet"] else None
        key = metric_key((entries[0] if entries else full)["test"])
        pareto = {
            "format": PARETO_FORMAT, "version": PARETO_VERSION, "metric": key,
            "metric_scale": "percent",   # evaluation returns AP in percent (0..100)
            "input_size": self.input_size, "weights": self.weights, "training_run": self.training_run(),
            "search": {"algorithm": hp["algorithm"], "population": hp["population"], "sample": hp["sample"],
                       "generations": hp["generations"], "fitness": hp["fitness"], "seed": hp["seed"],
                       "pruned_space": hp["pruned_space"], "path_filter": flt_file},
            "budgets": entries, "fullnet": full, "seconds": round(time.time() - t0, 2)}
        write_json_atomic(os.path.join(self.out, "pareto.json"), pareto, indent=1)
        plot_pareto(pareto, os.path.join(self.out, "pareto.png"))
        timings = [read_json(os.path.join(self.out, e["dir"], "result.json"), ValueError, "budget result")["timings"]
                   for e in entries]
        summary = {"pareto": os.path.join(self.out, "pareto.json"), "metric": key, "seconds": pareto["seconds"],
                   "search_seconds": round(sum(e["search_seconds"] for e in entries), 2),
                   "test_seconds_per_budget": [t["test_seconds"] for t in timings],
                   "export_seconds_per_budget": [t["export_seconds"] for t in timings],
                   "budgets": [{"budget_mflops": e["budget_mflops"], "mflops": e["mflops"], key: e["test"].get(key)}
                               for e in entries],
                   "fullnet": {"mflops": full["mflops"], key: full["test"].get(key)} if full else None}
        write_json_atomic(os.path.join(self.out, "summary.json"), summary, indent=1)
        self.log(f"Search done in {pareto['seconds']:.1f}s: " + ", ".join(
            f"{e['budget_mflops']:.1f} MFLOPs -> {e['mflops']:.1f} MFLOPs {key} {e['test'].get(key)}" for e in entries)
            + (f"; fullnet {full['mflops']:.1f} MFLOPs {key} {full['test'].get(key)}" if full else "")
            + f"; outputs in {self.out}")
        self.callback_on_finish()
        return pareto


def plot_pareto(pareto: dict, path: str) -> None:
    """Test metric vs MFLOPs of the searched paths; budgets as dotted vertical lines, fullnet marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    key = pareto["metric"]
    fig, ax = plt.subplots(figsize=(7, 4))
    pts = [(e["mflops"], e["test"].get(key)) for e in pareto["budgets"]]
    for e in pareto["budgets"]:
        ax.axvline(e["budget_mflops"], color="tab:gray", linestyle=":", linewidth=1)
    xs = [x for x, y in pts if y is not None]
    ys = [y for x, y in pts if y is not None]
    ax.plot(xs, ys, "o-", color="tab:blue", label="searched path per budget")
    full = pareto.get("fullnet")
    if full and full["test"].get(key) is not None:
        ax.plot([full["mflops"]], [full["test"][key]], "*", color="tab:red", markersize=12, label="fullnet")
    ax.set_xlabel("MFLOPs")
    ax.set_ylabel(f"test {key} ({pareto['metric_scale']})")
    ax.set_title(f"{pareto['search']['algorithm']} search, {pareto['search']['generations']} generations")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def read_pareto(path: str) -> dict:
    """A pareto.json of this runner (format and version checked)."""
    obj = read_json(path, ValueError, "pareto file")
    if not isinstance(obj, dict) or obj.get("format") != PARETO_FORMAT or obj.get("version") != PARETO_VERSION:
        raise ValueError(f"{path}: not a {PARETO_FORMAT} file version {PARETO_VERSION}")
    return obj


__all__ = ["DetOFASearcher", "SEARCH_OPTIONS", "plan_budgets", "search_buckets", "read_pareto", "plot_pareto"]
