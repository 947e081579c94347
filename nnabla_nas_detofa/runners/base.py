"""What every DetOFA runner shares: the hparams schema, the output folder and per-path measurement.

A runner declares its own hparams (``HPARAMS``, merged with ``COMMON``); the launcher checks the
experiment's ``hparams`` against them before any data is read (``check_hparams``) and asks the
runner whether it needs D_val (``needs_dval``): only then does the training split lose its
held-out part. Measurements go through one :class:`PathEvaluator` on the run's fixed sets
(``evaluation.path_eval.measurement_sets``).
"""
import os

from nnabla_nas.runner.runner import Runner

from ..detection.loss import check_loss_weights
from ..evaluation.path_eval import PathEvaluator, measurement_sets
from ..space import Arch, space_from_spec
from .schema import Custom, Int, ListOf, Num, epochs_spec, seed_spec, validate


def _loss_weights(v, where):
    return list(check_loss_weights(v, where))


def _space(v, where):
    space_from_spec(v, where)
    return v


def _arch_or_extreme(v, where):
    if v in ("min", "max"):
        return v
    return Arch.from_dict(v, where).to_dict()


def space_spec(default="ofa"):
    return Custom(_space, "a space name (ofa, compofa, ps1..ps5) or a space object", default=default)


def shapes_spec():
    """Per-sample shapes of the placeholders (the launcher derives them from the data and network)."""
    return ListOf(ListOf(Int(1), 1, 4), 1, nullable=True, default=None)


COMMON = {
    "epoch": epochs_spec(default=0),
    "batch_size_train": Int(1),
    "batch_size_valid": Int(1),
    "mini_batch_train": Int(1, nullable=True, default=None),   # default: the per-process batch
    "mini_batch_valid": Int(1, nullable=True, default=None),
    "input_shapes": shapes_spec(),
    "target_shapes": shapes_spec(),
    "print_frequency": Int(1, default=20),
    "seed": seed_spec(),
    "loss_weights": Custom(_loss_weights, "3 non-negative numbers (heatmap, size, offset)", nullable=True,
                           default=None),
    # per-path measurement (see evaluation.path_eval): once-for-all re-calibrates on 2,000 images
    "bn_calib_images": Int(0, default=2000),
    "bn_calib_batch_size": Int(1, nullable=True, default=None),   # default: mini_batch_valid
    "valid_images": Int(0, default=0),                             # 0: every image of the validation split
    "measurement_cache_mb": Num(0, default=1024.0),
}
VALID_ARCHS = ListOf(Custom(_arch_or_extreme, '"min", "max" or an arch object'), 0, default=["min", "max"])


class DetOFARunner(Runner):
    """Base of our NNablaNAS runners (see module doc)."""

    SEARCH = True      # builds NNablaNAS's SearchNet (the supernet)
    HPARAMS: dict = {}
    OPTIMIZERS = ("train",)   # the entries of "optimizer" the runner uses (the launcher refuses others)

    @classmethod
    def hparam_schema(cls) -> dict:
        return {**COMMON, **cls.HPARAMS}

    @classmethod
    def check_hparams(cls, hparams: dict, where: str = "hparams") -> dict:
        """The hparams with defaults filled in; SchemaError naming the key on any bad value."""
        return validate(hparams, cls.hparam_schema(), where)

    @classmethod
    def needs_dval(cls, hparams: dict) -> bool:
        """Whether the run measures paths on D_val, the held-out part of the training split."""
        return False

    def __init__(self, model, optimizer, regularizer, dataloader, hparams, args):
        hparams = type(self).check_hparams(hparams)  # idempotent: the launcher has checked them already
        super().__init__(model, optimizer, regularizer, dataloader, hparams, args)
        self.out = self._abs_output_path
        os.makedirs(self.out, exist_ok=True)
        self.input_size = int(hparams["input_shapes"][0][-1])
        self._evaluator = None

    @property
    def evaluator(self) -> PathEvaluator:
        """The run's per-path evaluator: BN calibration set and validation set fixed for the run."""
        if self._evaluator is None:
            hp = self.hparams
            calib, valid = measurement_sets(
                self.dataloader["train"], self.dataloader["valid"], self.out, hp["bn_calib_images"],
                hp["valid_images"], hp["bn_calib_batch_size"] or hp["mini_batch_valid"], hp["seed"],
                hp["measurement_cache_mb"])
            self._evaluator = PathEvaluator(self.model, calib, valid, loss_weights=hp["loss_weights"],
                                            comm=self.comm)
            self.log(f"Measurement sets: BatchNorm calibration on {len(calib) if calib else 0} training images, "
                     f"validation loss on {len(valid)} images of {self.dataloader['valid'].dataset.split}")
        return self._evaluator

    def log(self, message: str):
        self.monitor.info(message.rstrip("\n") + "\n")

    def log_splits(self):
        tr, va = self.dataloader["train"], self.dataloader["valid"]
        self.log(f"Data: training on {len(tr.dataset)} images ({tr.dataset.split}); validation images "
                 f"{len(va.dataset)} ({va.dataset.split}); test split {self.dataloader['test'].dataset.split}")

    # NNablaNAS Runner hooks: what a runner without its own epoch loop does at these points
    def callback_on_start(self):
        self.log_splits()

    def callback_on_epoch_end(self):
        self.monitor.write(self.cur_epoch)

    def callback_on_finish(self):
        self.monitor.close()

    def valid_on_batch(self):
        raise RuntimeError(f"{type(self).__name__} validates paths through PathEvaluator")
