"""Path-filter runner (DetOFA Algorithm 1, step 3): label paths of a trained supernet, train the filter.

From a trained supernet it samples ``paths_per_bucket`` paths in each FLOPs bucket of the space,
labels each with its validation loss on D_val (the held-out part of the training split) after
BatchNorm re-calibration on the run's fixed calibration set, then trains a path filter on them,
or fine-tunes a pre-trained one (``hparams.init``). Outputs: ``paths.jsonl`` (the labelled path
set), ``path_filter.h5`` + ``path_filter.json`` (weights and model/bucket settings),
``quality.json`` (the filter's quality on paths that did not select it, with the baselines, and
the labels' repeatability: the same paths labelled with a second calibration set).

Labels are appended to ``paths.partial.jsonl`` as they are measured (flushed line by line), so a
killed run resumes where it stopped instead of measuring again; a label is a function of the path,
the weights and the data, so the resumed run writes exactly the labels of an uninterrupted one.
Under MPI every rank labels its share of the paths (path ``i`` on rank ``i % n``) and rank 0
gathers them.
"""
import json
import os
import random
import time

from ..atomic import write_json_atomic
from ..data.fixed_sets import FixedImageSet, draw_ids, records_of
from ..evaluation.path_eval import PathEvaluator, gather_objects
from ..path_filter import PathFilter, PathSet, evaluate, fit_baseline, kendall_tau_within, train_path_filter
from ..path_filter.baselines import KINDS
from ..path_filter.train import (MIN_PATHS, TRAIN_OPTIONS, check_train_options, held_out_quality,
                                 validation_quality)
from ..space import Arch, space_from_spec
from ..space.bucket_sampling import BucketSample, sample_per_bucket
from .base import DetOFARunner, space_spec
from .schema import Choice, Custom, Int, ListOf, Num, Obj, Str

# hparams.filter: the options of train_path_filter (one definition); a run holds out a test split
FILTER_OPTIONS = dict(TRAIN_OPTIONS, test_fraction=Num(0, 1, hi_open=True, default=0.2))


def _init_filter(v, where):
    """``hparams.init``: a filter that loads (checked before any path is labelled)."""
    if not isinstance(v, str) or not v:
        raise ValueError(f"{where}={v!r}: expected the path of a path filter weight file (.h5)")
    PathFilter.load(v)
    return v


INIT_SPEC = Custom(_init_filter, "a path filter weight file (.h5 with its .json)", nullable=True, default=None)


def check_init_fits(init: str, filter_options: dict, space, n_buckets: int, where: str) -> None:
    """A pre-trained filter (``init``) fits the fine-tuning of ``filter_options`` on paths of
    ``space`` in ``n_buckets`` FLOPs buckets (switches, ensemble size, vocabulary, bucket count:
    ``check_initial_filter``); SchemaError in one
    line naming ``where`` and the file, before any path is labelled."""
    from ..path_filter.model import PathFilterError
    from ..path_filter.train import check_initial_filter
    from ..space import vocabulary
    from .schema import SchemaError
    try:
        check_initial_filter(PathFilter.load(init), filter_options, vocabulary(space), n_buckets,
                             where=f"{where}={init}")
    except PathFilterError as err:
        raise SchemaError(str(err)) from None


def check_enough_paths(paths_per_bucket: int, n_buckets: int, where: str) -> None:
    """A filter trained from scratch needs ``MIN_PATHS`` labelled paths: SchemaError before any
    path is labelled when ``paths_per_bucket`` x ``n_buckets`` cannot give them."""
    from .schema import SchemaError
    if paths_per_bucket * n_buckets < MIN_PATHS:
        raise SchemaError(f"{where}.paths_per_bucket={paths_per_bucket} x {where}.n_buckets={n_buckets} = "
                          f"{paths_per_bucket * n_buckets} paths; a path filter trained from scratch needs at "
                          f"least {MIN_PATHS} (or fine-tune a pre-trained one)")


HPARAMS = {
    "space": space_spec(),
    "paths_per_bucket": Int(1, default=100),
    "n_buckets": Int(1, 100, default=5),
    "init": INIT_SPEC,                                # pre-trained path filter (.h5) to fine-tune
    "filter": Obj(FILTER_OPTIONS),
    "baselines": ListOf(Choice(KINDS), default=list(KINDS)),  # fitted on the same split, reported next to it
    "repeatability_paths": Int(0, default=30),        # paths labelled again with a second calibration set
    "pruned_space": Str(nullable=True, default=None),  # sample the paths uniformly from this Ã instead of A
}


def sample_pruned_per_bucket(pruned, m: int, seed: int, max_rounds: int = 20) -> BucketSample:
    """``m`` distinct paths per bucket, each drawn uniformly from that bucket of the pruned space
    (fewer when a bucket holds fewer distinct paths than ``max_rounds`` rounds of draws find)."""
    import numpy as np
    gen = np.random.default_rng([seed, 8])
    archs, flops = [], []
    for b in range(pruned.buckets.n):
        found = {}
        for _ in range(max_rounds):
            arr, fl = pruned.sample_bucket(gen, b, m)
            for a, f in zip(arr.to_archs(), fl):
                if a not in found and len(found) < m:
                    found[a] = float(f)
            if len(found) >= m:
                break
        archs.append(list(found))
        flops.append(list(found.values()))
    return BucketSample(pruned.buckets, archs, flops, [0] * pruned.buckets.n)


class DetOFAPathFilterRunner(DetOFARunner):
    """NNablaNAS runner: sample and label paths of a trained supernet, train/fine-tune the path filter."""

    HPARAMS = HPARAMS

    @classmethod
    def check_hparams(cls, hparams: dict, where: str = "hparams") -> dict:
        hp = super().check_hparams(hparams, where)
        check_train_options(hp["filter"], hp["init"] is not None, f"{where}.filter")
        if hp["init"] is None:
            check_enough_paths(hp["paths_per_bucket"], hp["n_buckets"], where)
        else:
            check_init_fits(hp["init"], hp["filter"], space_from_spec(hp["space"], f"{where}.space"), hp["n_buckets"],
                            f"{where}.init")
        return hp

    @classmethod
    def needs_dval(cls, hparams):
        return True

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        self.space = space_from_spec(self.hparams["space"], "hparams.space")

    def train_on_batch(self, key="train"):
        raise RuntimeError("DetOFAPathFilterRunner does not train the supernet")

    # --- steps -------------------------------------------------------------------------------
    def sample_paths(self):
        hp = self.hparams
        if hp["pruned_space"]:
            from .pruned_trainer import load_pruned_space
            pruned = load_pruned_space(hp["pruned_space"], self.model.config, self.input_size, "hparams.pruned_space")
            return sample_pruned_per_bucket(pruned, hp["paths_per_bucket"], hp["seed"])
        return sample_per_bucket(self.space, self.model.config, self.input_size, hp["paths_per_bucket"],
                                 n_buckets=hp["n_buckets"], rng=hp["seed"], short="fewer")

    def _partial_path(self) -> str:
        rank = self.comm.rank
        return os.path.join(self.out, "paths.partial.jsonl" if rank == 0 else f"paths.partial.r{rank}.jsonl")

    def _read_partial(self, path):
        done = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        obj = json.loads(line)
                        done[Arch.from_dict(obj["arch"]).key()] = obj
                    except (ValueError, KeyError, TypeError):
                        break  # a line cut by a kill: measure that path again
        return done

    def label_paths(self, records, evaluator: PathEvaluator) -> PathSet:
        """Validation loss of every path (this rank's share; all on rank 0 at the end)."""
        partial = self._partial_path()
        done = self._read_partial(partial)
        if done:
            self.log(f"Resuming path labelling: {len(done)} of {len(records)} paths already measured")
        n, rank = self.comm.n_procs, self.comm.rank
        mine = [(i, r) for i, r in enumerate(records) if i % n == rank]
        t0 = time.time()
        rows = {}
        with open(partial, "a", encoding="utf-8") as f:
            for k, (i, rec) in enumerate(mine):
                arch = rec["arch"]
                if arch.key() in done:
                    rows[i] = done[arch.key()]
                    continue
                loss = evaluator.validation_loss(arch)
                row = {"arch": arch.to_dict(), "flops": rec["flops"], "val_loss": loss, "bucket": rec["bucket"]}
                rows[i] = row
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
                if k % 10 == 0:
                    self.log(f"[{k + 1}/{len(mine)}] bucket {rec['bucket']} {rec['flops']:.1f} MFLOPs "
                             f"val_loss {loss:.4f} ({time.time() - t0:.0f}s)")
        if n > 1:
            merged = {}
            for part in gather_objects(self.comm, rows):
                merged.update(part)
            rows = merged
        if rank != 0:
            return None
        ordered = [rows[i] for i in range(len(records))]
        return PathSet.from_lists([r["arch"] for r in ordered], [r["flops"] for r in ordered],
                                  [r["val_loss"] for r in ordered], extra=[{"bucket": r["bucket"]} for r in ordered])

    def repeatability(self, pathset: PathSet, evaluator: PathEvaluator):
        """The labels of up to ``repeatability_paths`` paths measured again with a second calibration
        set (another draw of the same size): within-bucket Kendall tau between the two labellings."""
        k = min(self.hparams["repeatability_paths"], len(pathset))
        if k < 2 or evaluator.calib is None:
            return None
        rng = random.Random(self.hparams["seed"] + 17)
        idx = sorted(rng.sample(range(len(pathset)), k))
        train_ds = self.dataloader["train"].dataset
        ids = draw_ids([r.image_id for r in train_ds.records], len(evaluator.calib), self.hparams["seed"] + 1, 0)
        calib2 = FixedImageSet(self.dataloader["train"].loader, records_of(train_ds.records, ids, "calibration"),
                               evaluator.calib.batch_size, with_targets=False, name="second calibration set",
                               cache_mb=self.hparams["measurement_cache_mb"])
        second = PathEvaluator(self.model, calib2, evaluator.valid, loss_weights=self.hparams["loss_weights"])
        again = [second.validation_loss(pathset[i].arch) for i in idx]
        first = [pathset[i].val_loss for i in idx]
        buckets = [pathset[i].extra["bucket"] for i in idx]
        tau = kendall_tau_within(first, again, buckets)
        return {"paths": k, "calibration_images": len(evaluator.calib), "kendall_tau_within": tau,
                "max_abs_difference": max(abs(a - b) for a, b in zip(first, again)),
                "indices": idx, "labels_seed2": again}

    def run(self):
        hp = self.hparams
        t0 = time.time()
        sample = self.sample_paths()
        self.log(f"Sampled {len(sample)} paths in {sample.buckets.n} FLOPs buckets "
                 f"[{sample.buckets.lo:.1f}, {sample.buckets.hi:.1f}] MFLOPs")
        self.callback_on_start()
        evaluator = self.evaluator
        pathset = self.label_paths(sample.records(), evaluator)
        t_label = time.time() - t0
        result = None
        if self.comm.rank == 0:
            pathset.write(os.path.join(self.out, "paths.jsonl"))
            rep = self.repeatability(pathset, evaluator)
            if rep is not None:
                self.log(f"Label repeatability: {rep['paths']} paths labelled again with another calibration set "
                         f"of {rep['calibration_images']} images: Kendall tau within buckets "
                         f"{rep['kendall_tau_within']:.3f}")
            fopt = hp["filter"]
            result = train_path_filter(pathset, buckets=sample.buckets, space=self.space, supernet=self.model.config,
                                       input_size=self.input_size, init=hp["init"], seed=hp["seed"],
                                       n_buckets=hp["n_buckets"], log=self.log, **fopt)
            result.filter.save(os.path.join(self.out, "path_filter.h5"))
            quality = held_out_quality(result, pathset)
            baselines = {}
            held = result.test_index if len(result.test_index) else result.val_index
            kinds = hp["baselines"] if len(pathset) >= MIN_PATHS else []
            if hp["baselines"] and not kinds:
                self.log(f"Baselines not fitted: {len(pathset)} paths (a baseline needs {MIN_PATHS})")
            for kind in kinds:
                b = fit_baseline(kind, pathset, buckets=sample.buckets, val_fraction=fopt["val_fraction"],
                                 test_fraction=fopt["test_fraction"], seed=hp["seed"])
                baselines[kind] = dict(evaluate(b.ranker, pathset.subset(held), buckets=sample.buckets),
                                       computed_on=quality["computed_on"], baseline=b.info)
            report = {"paths": len(pathset), "buckets": sample.buckets.to_dict(), "label_seconds": round(t_label, 1),
                      "filter_seconds": round(result.seconds, 1), "training": result.summary(),
                      "best_epoch": result.best_epoch, "fine_tuned_from": hp["init"],
                      "test_index": result.test_index.tolist(), "val_index": result.val_index.tolist(),
                      "quality": quality, "quality_on_validation_split": validation_quality(result, pathset),
                      "baselines": baselines, "label_repeatability": rep}
            write_json_atomic(os.path.join(self.out, "quality.json"), report, indent=1)
            os.remove(self._partial_path())
            weak = quality["weak"].get("0.25", {})
            line = ", ".join(f"{k} {v['kendall_tau_within']:.3f} / {v['weak']['0.25']['precision']:.3f}"
                             for k, v in baselines.items())
            self.log(f"Path filter trained in {result.seconds:.1f}s on {len(pathset)} paths; on the "
                     f"{quality['computed_on']}: Kendall tau within buckets {quality['kendall_tau_within']}, "
                     f"weakest-25% precision {weak.get('precision')}; baselines (tau / precision): {line}; "
                     f"outputs in {self.out}")
        elif os.path.exists(self._partial_path()):
            os.remove(self._partial_path())
        self.callback_on_finish()
        return result
