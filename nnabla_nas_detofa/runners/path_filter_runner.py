"""Path-filter runner (DetOFA Algorithm 1, step 3): label paths of a trained supernet, train the filter.

From a trained supernet it samples ``paths_per_bucket`` paths in each FLOPs bucket of the space,
labels each with its validation loss on D_val (the held-out part of the training split that a
search-mode loader provides) after BatchNorm re-calibration, then trains a path filter on them, or
fine-tunes a pre-trained one (``hparams.init``). Outputs: ``paths.jsonl`` (the labelled path set),
``path_filter.h5`` + ``path_filter.json`` (weights and model/bucket settings), ``quality.json``
(quality on the filter's validation split, with the FLOPs-only baseline).

Labels are appended to ``paths.partial.jsonl`` as they are measured (flushed line by line), so a
killed run resumes where it stopped instead of measuring again.
"""
import json
import os
import time

from nnabla_nas.runner.runner import Runner

from ..atomic import write_json_atomic
from ..evaluation.path_eval import PathEvaluator
from ..path_filter import PathSet, train_path_filter, validation_quality
from ..space import Arch, space_from_spec
from ..space.bucket_sampling import sample_per_bucket

HPARAM_DEFAULTS = {
    "space": "ofa",
    "paths_per_bucket": 100,
    "n_buckets": 5,
    "bn_calib_batches": 2,
    "valid_batches": 0,          # batches of D_val per path (0: all of it)
    "seed": 0,
    "init": None,                # pre-trained path filter (.h5) to fine-tune
    "filter": {},                # train_path_filter options: epochs, batch_size, lr, val_fraction, budget, ...
    "loss_weights": None,
}
FILTER_KEYS = {"epochs", "batch_size", "lr", "val_fraction", "budget", "block_pe", "pe_norm", "flops_bounded",
               "max_seconds"}


class DetOFAPathFilterRunner(Runner):
    """NNablaNAS runner: sample and label paths of a trained supernet, train/fine-tune the path filter."""

    SEARCH = True

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        hp = dict(HPARAM_DEFAULTS)
        hp.update(hparams)
        bad = sorted(set(hp.get("filter") or {}) - FILTER_KEYS)
        if bad:
            raise ValueError(f"hparams.filter: unknown key(s) {bad}; known: {sorted(FILTER_KEYS)}")
        super().__init__(model, optimizer, regularizer, dataloader, hp, args)
        self.out = self._abs_output_path
        os.makedirs(self.out, exist_ok=True)
        self.space = space_from_spec(hp["space"], "hparams.space")
        self.input_size = hp["input_shapes"][0][-1]

    # Runner's abstract hooks: this runner has no training loop of the supernet.
    def train_on_batch(self, key="train"):
        raise RuntimeError("DetOFAPathFilterRunner does not train the supernet")

    def valid_on_batch(self):
        raise RuntimeError("DetOFAPathFilterRunner labels paths through PathEvaluator")

    def callback_on_start(self):
        pass

    def callback_on_epoch_end(self):
        pass

    def callback_on_finish(self):
        self.monitor.close()

    # --- steps -------------------------------------------------------------------------------
    def sample_paths(self):
        hp = self.hparams
        sample = sample_per_bucket(self.space, self.model.config, self.input_size, int(hp["paths_per_bucket"]),
                                   n_buckets=int(hp["n_buckets"]), rng=int(hp["seed"]), short="fewer")
        return sample

    def label_paths(self, records):
        """Validation loss of every path; resumes from ``paths.partial.jsonl``."""
        partial = os.path.join(self.out, "paths.partial.jsonl")
        done = {}
        if os.path.isfile(partial):
            with open(partial, encoding="utf-8") as f:
                for line in f:
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a line cut by a kill: measure that path again
                    done[Arch.from_dict(obj["arch"]).key()] = obj
            self.monitor.info(f"Resuming path labelling: {len(done)} of {len(records)} paths already measured\n")
        evaluator = PathEvaluator(self.model, self.dataloader["train"], self.dataloader["valid"],
                                  calib_batches=int(self.hparams["bn_calib_batches"]), comm=self.comm)
        t0 = time.time()
        rows = []
        with open(partial, "a", encoding="utf-8") as f:
            for i, rec in enumerate(records):
                arch = rec["arch"]
                if arch.key() in done:
                    rows.append(done[arch.key()])
                    continue
                loss = evaluator.validation_loss(arch, n_batches=int(self.hparams["valid_batches"]))
                row = {"arch": arch.to_dict(), "flops": rec["flops"], "val_loss": loss, "bucket": rec["bucket"]}
                rows.append(row)
                if self.comm.rank == 0:
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                if i % 10 == 0:
                    self.monitor.info(f"[{i + 1}/{len(records)}] bucket {rec['bucket']} {rec['flops']:.1f} MFLOPs "
                                      f"val_loss {loss:.4f} ({time.time() - t0:.0f}s)\n")
        return PathSet.from_lists([r["arch"] for r in rows], [r["flops"] for r in rows],
                                  [r["val_loss"] for r in rows], extra=[{"bucket": r["bucket"]} for r in rows])

    def run(self):
        hp = self.hparams
        t0 = time.time()
        sample = self.sample_paths()
        self.monitor.info(f"Sampled {len(sample)} paths in {sample.buckets.n} FLOPs buckets "
                          f"[{sample.buckets.lo:.1f}, {sample.buckets.hi:.1f}] MFLOPs\n")
        pathset = self.label_paths(sample.records())
        t_label = time.time() - t0
        result = None
        if self.comm.rank == 0:
            pathset.write(os.path.join(self.out, "paths.jsonl"))
            result = train_path_filter(pathset, buckets=sample.buckets, space=self.space, supernet=self.model.config,
                                       input_size=self.input_size, init=hp["init"], seed=int(hp["seed"]),
                                       n_buckets=int(hp["n_buckets"]), log=lambda msg: self.monitor.info(msg + "\n"),
                                       **(hp["filter"] or {}))
            result.filter.save(os.path.join(self.out, "path_filter.h5"))
            quality = validation_quality(result, pathset)
            report = {"paths": len(pathset), "buckets": sample.buckets.to_dict(), "label_seconds": round(t_label, 1),
                      "filter_seconds": round(result.seconds, 1), "best_epoch": result.best_epoch,
                      "fine_tuned_from": hp["init"], "quality_on_validation_split": quality}
            write_json_atomic(os.path.join(self.out, "quality.json"), report, indent=1)
            os.remove(os.path.join(self.out, "paths.partial.jsonl"))
            weak = quality["weak"].get("0.25", {})
            self.monitor.info(f"Path filter trained in {result.seconds:.1f}s on {len(pathset)} paths; validation "
                              f"split: Kendall tau within buckets {quality['kendall_tau_within']}, weakest-25% "
                              f"precision {weak.get('precision')} recall {weak.get('recall')}; outputs in {self.out}\n")
        self.callback_on_finish()
        return result
