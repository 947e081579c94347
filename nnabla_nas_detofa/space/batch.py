"""Many paths at once: archs as integer arrays and their analytic FLOPs in one vectorised pass.

``mflops`` costs ~100-300 us per path (Python over the layer list); sampling a pruned space by
rejection, scoring operations over thousands of paths and counting FLOPs buckets need millions.
:class:`ArchArrays` holds N paths as integer arrays and :class:`FlopsTable` counts their FLOPs
from tables of per-layer multiply-accumulates built with the same per-layer formulas as
``flops.py`` (``stem_macs``, ``unit_macs``, ``head_macs_from``): the integer MAC count of every
path is the one ``mflops`` computes, so the MFLOPs are equal to the last bit (tested).
"""
from typing import Dict, List, Sequence

import numpy as np

from .arch import (BASE_DEPTHS, DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, SLOT_POS, SLOT_STAGE,
                   STAGE_FIRST_SLOT, STAGE_SLOTS, STAGE_STRIDES, STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch)
from .config import SupernetConfig, check_input_size
from .flops import PARTS, head_macs_from, stage_input_sizes, stem_macs, unit_macs

_SLOT_POS = np.array(SLOT_POS)
_SLOT_BASE = np.array([BASE_DEPTHS[s] for s in SLOT_STAGE])
_SLOT_STAGE = np.array(SLOT_STAGE)
_EXPANDS = np.array(EXPAND_CHOICES)


class ArchArrays:
    """N paths: ``d`` (N, 5) depth values, ``w`` (N, 6) width indices, ``e`` (N, 18) indices into
    ``EXPAND_CHOICES`` (int64). Like an Arch, the expand ratios of dropped slots carry no meaning."""

    __slots__ = ("d", "w", "e")

    def __init__(self, d, w, e):
        self.d = np.asarray(d, np.int64).reshape(-1, 1 + N_STAGES)
        self.w = np.asarray(w, np.int64).reshape(-1, 2 + N_STAGES)
        self.e = np.asarray(e, np.int64).reshape(-1, N_SLOTS)
        if not len(self.d) == len(self.w) == len(self.e):
            raise ValueError(f"ArchArrays: {len(self.d)} d rows, {len(self.w)} w rows, {len(self.e)} e rows")
        stem_ok = np.isin(self.d[:, 0], STEM_DEPTH_CHOICES)
        ok = (stem_ok.all() and np.isin(self.d[:, 1:], DEPTH_CHOICES).all()
              and ((self.w >= 0) & (self.w < len(WIDTH_CHOICES))).all()
              and ((self.e >= 0) & (self.e < len(EXPAND_CHOICES))).all())
        if not ok:
            raise ValueError("ArchArrays: a depth, width index or expand index out of range")

    @classmethod
    def _trusted(cls, d: np.ndarray, w: np.ndarray, e: np.ndarray) -> "ArchArrays":
        """Arrays known valid (int64, right shapes and ranges), without the checks."""
        self = object.__new__(cls)
        self.d, self.w, self.e = d, w, e
        return self

    @classmethod
    def from_archs(cls, archs: Sequence) -> "ArchArrays":
        archs = [Arch.from_dict(a) for a in archs]
        if not archs:
            return cls(np.zeros((0, 1 + N_STAGES)), np.zeros((0, 2 + N_STAGES)), np.zeros((0, N_SLOTS)))
        return cls([a.d for a in archs], [a.w for a in archs],
                   [[EXPAND_CHOICES.index(v) for v in a.e] for a in archs])

    def arch(self, i: int) -> Arch:
        return self.take([i]).to_archs()[0]

    def to_archs(self) -> List[Arch]:
        """The paths as Arch objects (values were range-checked when the arrays were made)."""
        out = []
        for d, e, w, act in zip(self.d.tolist(), _EXPANDS[self.e].tolist(), self.w.tolist(), self.active().tolist()):
            d, e, w = tuple(d), tuple(e), tuple(w)
            out.append(Arch._trusted(d, e, w, (d, tuple(v if a else None for v, a in zip(e, act)), w)))
        return out

    def take(self, idx) -> "ArchArrays":
        return ArchArrays._trusted(self.d[idx], self.w[idx], self.e[idx])

    def active(self) -> np.ndarray:
        """(N, 18) bool: which unit slots each path runs."""
        depth = self.d[:, 1 + _SLOT_STAGE] + _SLOT_BASE
        return _SLOT_POS[None, :] < depth

    def __len__(self):
        return len(self.d)


def empty_arrays() -> ArchArrays:
    return ArchArrays(np.zeros((0, 1 + N_STAGES)), np.zeros((0, 2 + N_STAGES)), np.zeros((0, N_SLOTS)))


def concat(parts: Sequence[ArchArrays]) -> ArchArrays:
    return ArchArrays._trusted(np.concatenate([p.d for p in parts]), np.concatenate([p.w for p in parts]),
                      np.concatenate([p.e for p in parts]))


class FlopsTable:
    """Per-layer MAC tables of one supernet at one input size; ``mflops(arrays)`` for many paths.

    Tables (int64): ``stem[residual, w0, w1]``; ``unit[slot]`` indexed ``[cin width, stage width,
    expand]`` (the input width is the previous stage's for a stage's first unit, the stem's for
    stage 1, the stage's own otherwise); ``head[w5]`` (neck and heads on the last stage's width)."""

    def __init__(self, cfg: SupernetConfig, input_size: int):
        check_input_size(input_size)
        self.cfg, self.input_size = cfg, int(input_size)
        nw, ne = len(WIDTH_CHOICES), len(EXPAND_CHOICES)
        mids, outs = cfg.stem_mid_list(), cfg.stem_out_list()
        self.stem = np.array([[[stem_macs(input_size, mids[w0], outs[w1], d0 == max(STEM_DEPTH_CHOICES))
                                for w1 in range(nw)] for w0 in range(nw)] for d0 in STEM_DEPTH_CHOICES], np.int64)
        sizes = stage_input_sizes(input_size)
        self.unit = np.zeros((N_SLOTS, nw, nw, ne), np.int64)
        for k in range(N_SLOTS):
            s, pos = SLOT_STAGE[k], SLOT_POS[k]
            outs_s = cfg.stage_out_list(s)
            ins = outs if s == 0 else cfg.stage_out_list(s - 1)
            size = sizes[s] if pos == 0 else (sizes[s] - 1) // STAGE_STRIDES[s] + 1
            for ci in range(nw):
                for wi in range(nw):
                    cin = ins[ci] if pos == 0 else outs_s[wi]
                    for ei, ev in enumerate(EXPAND_CHOICES):
                        mid = cfg.mid_channels(outs_s[wi], ev)
                        stride = STAGE_STRIDES[s] if pos == 0 else 1
                        self.unit[k, ci, wi, ei] = unit_macs(size, cin, mid, outs_s[wi], stride, pos == 0)
        self.head = np.array([head_macs_from(cfg.stage_out_list(N_STAGES - 1)[w], cfg, input_size)
                              for w in range(nw)], np.int64)
        # input width index column of each slot: w[1] (stem out) for stage 1's first unit,
        # the previous stage's width for other first units, the stage's own width inside a stage
        self.slot_cin_col = np.array([(1 if SLOT_STAGE[k] == 0 else 1 + SLOT_STAGE[k]) if SLOT_POS[k] == 0
                                      else 2 + SLOT_STAGE[k] for k in range(N_SLOTS)])
        self.slot_w_col = 2 + _SLOT_STAGE

    def backbone_macs(self, a: ArchArrays) -> np.ndarray:
        res = (a.d[:, 0] == max(STEM_DEPTH_CHOICES)).astype(np.int64)
        tot = self.stem[res, a.w[:, 0], a.w[:, 1]]
        cin = a.w[:, self.slot_cin_col]
        ws = a.w[:, self.slot_w_col]
        per = self.unit[np.arange(N_SLOTS)[None, :], cin, ws, a.e]      # (N, 18)
        return tot + (per * a.active()).sum(axis=1)

    def head_macs(self, a: ArchArrays) -> np.ndarray:
        return self.head[a.w[:, 1 + N_STAGES]]

    def macs(self, a: ArchArrays, part: str = "detector") -> np.ndarray:
        if part not in PARTS:
            raise ValueError(f"part={part!r}: expected one of {PARTS}")
        if part == "backbone":
            return self.backbone_macs(a)
        if part == "head":
            return self.head_macs(a)
        return self.backbone_macs(a) + self.head_macs(a)

    def mflops(self, a: ArchArrays, part: str = "detector") -> np.ndarray:
        """MFLOPs (MACs / 1e6) of every path, float64; equal to ``mflops(arch, cfg, input_size, part)``."""
        return self.macs(a, part) / 1e6

    def stage_bounds(self, emin: np.ndarray, emax: np.ndarray) -> Dict[int, np.ndarray]:
        """Per stage s, MACs of the stage's units for every (input width, depth choice, width)
        when every slot takes its expand index ``emin[k]`` (``[..., 0]``) or ``emax[k]``
        (``[..., 1]``): shape (3, 3, 3, 2), indexed ``[cin width, depth value, width]``.
        MACs grow with the expand ratio, so these bound the stage over any expand choices
        between them."""
        out = {}
        nw = len(WIDTH_CHOICES)
        for s in range(N_STAGES):
            t = np.zeros((nw, 3, nw, 2), np.int64)
            first = STAGE_FIRST_SLOT[s]
            for dv in range(3):
                for pos in range(BASE_DEPTHS[s] + dv):
                    if pos >= STAGE_SLOTS[s]:
                        break
                    k = first + pos
                    u = self.unit[k]
                    t[:, dv, :, 0] += u[:, :, emin[k]]
                    t[:, dv, :, 1] += u[:, :, emax[k]]
            out[s] = t
        return out
