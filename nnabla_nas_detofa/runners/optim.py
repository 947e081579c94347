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

from ..schema import Bool, Int, ListOf, Num, SchemaError


class OptimizerConfigError(ValueError):
    pass


SCHEDULERS = ("StepScheduler", "CosineScheduler", "ConstantScheduler")


class ConstantScheduler(LRS.BaseLearningRateScheduler):
    def __init__(self, init_lr):
        self.init_lr = init_lr

    def get_learning_rate(self, iter):
        return self.init_lr


LR_KEYS = ("alpha", "lr", "eta")   # what NNabla's solvers call their learning rate
LR = Num(0, 100, lo_open=True)     # a larger learning rate is a typo (and gives NaN in a few steps)
SCHEDULE_KEYS = {      # key: (spec, the schedulers it applies to)
    "steps": (ListOf(Int(1), 1), ("StepScheduler",)),
    "gamma": (Num(0, lo_open=True), ("StepScheduler",)),
    "warmup_epochs": (Int(0), SCHEDULERS),
}
COMMON_KEYS = {"weight_decay": Num(0), "grad_clip": Num(0, lo_open=True, nullable=True)}


def _check(spec, value, where):
    try:
        return spec(value, where)
    except SchemaError as err:
        raise OptimizerConfigError(str(err)) from None


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
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise OptimizerConfigError(f"{where}.name={name!r}: expected one of {SCHEDULERS}")
    known = {"name"} | {k for k, (_, used) in SCHEDULE_KEYS.items() if name in used}
    bad = sorted(set(spec) - known)
    if bad:
        raise OptimizerConfigError(f"{where}: unknown key(s) {bad} for {name}; known: {sorted(known)}")
    opts = {k: _check(SCHEDULE_KEYS[k][0], v, f"{where}.{k}") for k, v in spec.items() if k != "name"}
    total = max(1, epochs * iters_per_epoch)
    if name == "StepScheduler":
        steps = opts.get("steps")
        if steps is None:
            raise OptimizerConfigError(f"{where}.steps: expected a list of epochs, e.g. [45, 60]")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise OptimizerConfigError(f"{where}.steps={steps}: expected increasing epochs, e.g. [45, 60]")
        sched = LRS.StepScheduler(lr, opts.get("gamma", 0.1), [s * iters_per_epoch for s in steps])
    elif name == "CosineScheduler":
        sched = LRS.CosineScheduler(lr, total)
    else:
        sched = ConstantScheduler(lr)
    warm = opts.get("warmup_epochs", 0) * iters_per_epoch
    return LRS.LinearWarmupScheduler(sched, warm) if warm > 0 else sched


def _solver_spec(default):
    """The spec of a solver argument, from the type of its default value."""
    if isinstance(default, bool):
        return Bool()
    return Num()


def make_optimizer(spec: dict, epochs: int, iters_per_epoch: int, where: str) -> Optimizer:
    """An NNablaNAS ``Optimizer`` from one entry of the experiment's ``"optimizer"``; every value is
    checked (``OptimizerConfigError`` naming the key path): ``lr`` a positive finite number, solver
    arguments of the solver's types, the schedule's keys for that schedule only."""
    if not isinstance(spec, dict):
        raise OptimizerConfigError(f"{where}: expected an object, e.g. {{\"name\": \"Adam\", \"lr\": 5e-4}}")
    spec = dict(spec)
    name = spec.pop("name", "Adam")
    if not isinstance(name, str) or name not in S.__dict__ or not inspect.isfunction(S.__dict__[name]):
        raise OptimizerConfigError(f"{where}.name={name!r}: not an NNabla solver (e.g. Adam, Momentum, Nesterov, Sgd)")
    params = inspect.signature(S.__dict__[name]).parameters
    lr_key = next((k for k in LR_KEYS if k in params), "lr")
    given = [k for k in LR_KEYS if k in spec]
    if not given:
        raise OptimizerConfigError(f"{where}: missing key 'lr'")
    if len(given) > 1:
        raise OptimizerConfigError(f"{where}: the learning rate is given twice ({', '.join(given)})")
    lr = _check(LR, spec.pop(given[0]), f"{where}.{given[0]}")
    sched = make_scheduler(spec.pop("lr_scheduler", None), lr, epochs, iters_per_epoch, f"{where}.lr_scheduler")
    extra = {k: _check(COMMON_KEYS[k], spec.pop(k), f"{where}.{k}") for k in COMMON_KEYS if k in spec}
    allowed = set(params) - {lr_key}
    bad = sorted(set(spec) - allowed)
    if bad:
        raise OptimizerConfigError(f"{where}: unknown key(s) {bad} for solver {name}; known: "
                                   f"{sorted(allowed | {'lr', 'weight_decay', 'grad_clip', 'lr_scheduler'})}")
    for k in list(spec):
        spec[k] = _check(_solver_spec(params[k].default), spec[k], f"{where}.{k}")
    spec[lr_key] = lr
    return Optimizer(name=name, lr_scheduler=sched, **extra, **spec)
