"""Solvers and learning-rate schedules from the experiment's ``"optimizer"`` object.

``{"train": {"name": "Adam", "lr": 5e-4, "weight_decay": 0, "grad_clip": null,
             "lr_scheduler": {"name": "StepScheduler", "steps": [45, 60], "gamma": 0.1, "warmup_epochs": 0}}}``
Schedules are given in epochs and turned into iterations here; ``"CosineScheduler"`` runs over
all epochs. NNablaNAS's ``Optimizer`` wraps the NNabla solver.
"""
import inspect

import nnabla.solvers as S
import nnabla.utils.learning_rate_scheduler as LRS
from nnabla_nas.optimizer import Optimizer


class OptimizerConfigError(ValueError):
    pass


SCHEDULERS = ("StepScheduler", "CosineScheduler", "ConstantScheduler")


class ConstantScheduler(LRS.BaseLearningRateScheduler):
    def __init__(self, init_lr):
        self.init_lr = init_lr

    def get_learning_rate(self, iter):
        return self.init_lr


class StagedScheduler(LRS.BaseLearningRateScheduler):
    """Stage ``k`` (from iteration ``starts[k]``) runs its own schedule from its own iteration 0:
    progressive shrinking gives every stage its own learning-rate schedule, as once-for-all does."""

    def __init__(self, starts, schedulers):
        if len(starts) != len(schedulers) or not starts or starts[0] != 0 or list(starts) != sorted(starts):
            raise ValueError("StagedScheduler: stage starts must begin at 0 and increase")
        self.starts, self.schedulers = list(starts), list(schedulers)

    def get_learning_rate(self, iter):
        k = max(i for i, s in enumerate(self.starts) if s <= iter)
        return self.schedulers[k].get_learning_rate(iter - self.starts[k])


def staged_scheduler(spec: dict, stage_epochs, iters_per_epoch: int, where: str, lrs=None) -> StagedScheduler:
    """One schedule per stage from the optimizer ``spec`` (its ``lr`` and ``lr_scheduler``, sized to
    each stage's epochs); ``lrs``: optional initial learning rate per stage (None: the spec's)."""
    scheds, starts, start = [], [], 0
    base = spec.get("lr", spec.get("alpha"))
    for k, ep in enumerate(stage_epochs):
        lr = base if lrs is None or lrs[k] is None else lrs[k]
        scheds.append(make_scheduler(spec.get("lr_scheduler"), float(lr), int(ep), iters_per_epoch,
                                     f"{where}.lr_scheduler"))
        starts.append(start)
        start += int(ep) * iters_per_epoch
    return StagedScheduler(starts, scheds)


def make_scheduler(spec, lr: float, epochs: int, iters_per_epoch: int, where: str):
    if spec is None:
        return ConstantScheduler(lr)
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec:
        raise OptimizerConfigError(f"{where}: expected a scheduler name or an object with 'name'")
    name = spec["name"]
    known = {"name", "steps", "gamma", "warmup_epochs"}
    bad = sorted(set(spec) - known)
    if bad:
        raise OptimizerConfigError(f"{where}: unknown key(s) {bad}; known: {sorted(known)}")
    total = max(1, epochs * iters_per_epoch)
    if name == "StepScheduler":
        steps = spec.get("steps")
        if not isinstance(steps, list) or not all(isinstance(s, int) and s > 0 for s in steps):
            raise OptimizerConfigError(f"{where}.steps: expected a list of epochs, e.g. [45, 60]")
        sched = LRS.StepScheduler(lr, float(spec.get("gamma", 0.1)), [s * iters_per_epoch for s in steps])
    elif name == "CosineScheduler":
        sched = LRS.CosineScheduler(lr, total)
    elif name == "ConstantScheduler":
        sched = ConstantScheduler(lr)
    else:
        raise OptimizerConfigError(f"{where}.name={name!r}: expected one of {SCHEDULERS}")
    warm = int(spec.get("warmup_epochs", 0)) * iters_per_epoch
    return LRS.LinearWarmupScheduler(sched, warm) if warm > 0 else sched


def make_optimizer(spec: dict, epochs: int, iters_per_epoch: int, where: str) -> Optimizer:
    if not isinstance(spec, dict):
        raise OptimizerConfigError(f"{where}: expected an object")
    spec = dict(spec)
    name = spec.pop("name", "Adam")
    if name not in S.__dict__ or not inspect.isfunction(S.__dict__[name]):
        raise OptimizerConfigError(f"{where}.name={name!r}: not an NNabla solver (e.g. Adam, Momentum, Nesterov, Sgd)")
    lr_key = "alpha" if "alpha" in inspect.signature(S.__dict__[name]).parameters else "lr"
    lr = spec.pop("lr", spec.pop("alpha", None))
    if lr is None:
        raise OptimizerConfigError(f"{where}: missing key 'lr'")
    sched = make_scheduler(spec.pop("lr_scheduler", None), float(lr), epochs, iters_per_epoch, f"{where}.lr_scheduler")
    extra = {k: spec.pop(k) for k in ("weight_decay", "grad_clip") if k in spec}
    allowed = set(inspect.signature(S.__dict__[name]).parameters) - {lr_key}
    bad = sorted(set(spec) - allowed)
    if bad:
        raise OptimizerConfigError(f"{where}: unknown key(s) {bad} for solver {name}; known: "
                                   f"{sorted(allowed | {'lr', 'weight_decay', 'grad_clip', 'lr_scheduler'})}")
    spec[lr_key] = float(lr)
    return Optimizer(name=name, lr_scheduler=sched, **extra, **spec)
