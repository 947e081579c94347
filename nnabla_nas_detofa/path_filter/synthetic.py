"""Synthetic path sets with a known loss, for tests and benchmarks of the path filter.

``SyntheticTask(seed)`` defines the validation loss of a path as a known function

    loss(a) = base - flops_weight * log(FLOPs(a) / FLOPs_ref)
              + stem effect + sum over stages (depth effect + width effect + depth x width effect)
              + sum over active units (expand effect of the unit's slot and stage width)
              + Gaussian noise

with every effect table drawn once from the seed. Inside a FLOPs bucket the FLOPs term varies
little, the effects do not follow FLOPs, so a ranking by FLOPs alone is a weak baseline and a
filter that learns the per-choice effects (including the unit-slot x stage-width interaction that
the token ``W{w}_E{e}`` at its position carries) can do much better. ``perturbed`` gives a
related task (a *target* supernet for transfer), the same effects plus a fraction of new ones.
"""
import math
from typing import Optional

import numpy as np

from ..space import (DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch,
                     SearchSpace, SupernetConfig, mflops)
from ..space.arch import SLOT_STAGE
from ..space.bucket_sampling import sample_per_bucket
from .pathset import PathSet


class SyntheticTask:
    def __init__(self, seed: int = 0, flops_weight: float = 0.3, effect_scale: float = 0.03,
                 noise: float = 0.005, base: float = 2.0):
        rng = np.random.RandomState(seed)
        nd, nw, ne = len(DEPTH_CHOICES), len(WIDTH_CHOICES), len(EXPAND_CHOICES)
        self.flops_weight, self.noise, self.base = flops_weight, noise, base
        self.effect_scale = effect_scale
        self.stem = rng.randn(len(STEM_DEPTH_CHOICES), nw, nw) * effect_scale
        self.depth = rng.randn(N_STAGES, nd) * effect_scale * 2
        self.width = rng.randn(N_STAGES, nw) * effect_scale * 2
        self.depth_width = rng.randn(N_STAGES, nd, nw) * effect_scale
        self.expand = rng.randn(N_SLOTS, nw, ne) * effect_scale

    def perturbed(self, seed: int, amount: float = 0.3) -> "SyntheticTask":
        """Same FLOPs term; effects = (1 - amount) * these + amount * those of ``SyntheticTask(seed)``."""
        other = SyntheticTask(seed, self.flops_weight, self.effect_scale, self.noise, self.base)
        out = SyntheticTask.__new__(SyntheticTask)
        out.flops_weight, out.noise, out.base, out.effect_scale = self.flops_weight, self.noise, self.base, \
            self.effect_scale
        for name in ("stem", "depth", "width", "depth_width", "expand"):
            setattr(out, name, (1 - amount) * getattr(self, name) + amount * getattr(other, name))
        return out

    def clean_loss(self, arch: Arch, flops: float, flops_ref: float = 1.0) -> float:
        """The loss without noise."""
        arch = Arch.from_dict(arch)
        v = self.base - self.flops_weight * math.log(flops / flops_ref)
        v += self.stem[STEM_DEPTH_CHOICES.index(arch.d[0]), arch.w[0], arch.w[1]]
        for s in range(N_STAGES):
            d, w = DEPTH_CHOICES.index(arch.d[s + 1]), arch.w[s + 2]
            v += self.depth[s, d] + self.width[s, w] + self.depth_width[s, d, w]
        for k in arch.active_slots():
            v += self.expand[k, arch.w[2 + SLOT_STAGE[k]], EXPAND_CHOICES.index(arch.e[k])]
        return float(v)

    def losses(self, archs, flops, seed: int = 0, flops_ref: Optional[float] = None) -> np.ndarray:
        flops = np.asarray(flops, np.float64)
        ref = float(np.min(flops)) if flops_ref is None else flops_ref
        rng = np.random.RandomState(seed)
        clean = np.array([self.clean_loss(a, f, ref) for a, f in zip(archs, flops)])
        return clean + rng.randn(len(clean)) * self.noise


def synthetic_pathset(task: SyntheticTask, space: SearchSpace, cfg: SupernetConfig, input_size: int, m: int,
                      seed: int = 0, n_buckets: int = 5) -> PathSet:
    """``m`` paths per FLOPs bucket of ``space`` (``sample_per_bucket``), labelled by ``task``;
    each line also carries its "bucket"."""
    sample = sample_per_bucket(space, cfg, input_size, m, n_buckets=n_buckets, rng=seed)
    recs = sample.records()
    archs = [r["arch"] for r in recs]
    flops = [r["flops"] for r in recs]
    ref = mflops(space.extreme(False), cfg, input_size)
    loss = task.losses(archs, flops, seed=seed + 7919, flops_ref=ref)
    return PathSet.from_lists(archs, flops, loss, extra=[{"bucket": r["bucket"]} for r in recs])
