"""Channel re-organisation by importance (once-for-all's progressive shrinking).

A path uses the leading channels of every layer, so before a progressive-shrinking stage makes
narrower choices trainable, once-for-all sorts channels so that the most important ones come first
(``DynamicResNetBottleneckBlock.re_organize_middle_weights``): a channel's importance is the L1
norm of the weights that read it in the next layer; the producing layer's filters, its BatchNorm
(affine and running statistics) and the consumers' input weights are permuted together, so the
largest path computes exactly the same function afterwards.

* ``reorganize_middle``: the middle channels of every bottleneck (the expand-ratio dimension),
  conv3 -> conv2 (conv2's output), then conv2 -> conv1 (conv1's output).
* ``reorganize_width``: the stem's channels and every stage's output channels (the width
  dimension; a stage's output channels are shared by all its units through the residual sums, so
  one permutation covers the stage: every unit's conv3 and the shortcut produce them, the next
  units, the next stage's first unit (conv1 and shortcut) or the neck read them).

``bands``: channel counts already trained (the widths of the choices of the previous stage);
channels then move only inside ``[0, b1), [b1, b2), ...`` so the slices trained so far keep their
channels (once-for-all's ``expand_ratio_stage > 0``). Works on the parameter arrays of a
``DetectorNet`` built at maximum widths (a supernet).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..space.arch import N_STAGES, STAGE_SLOTS

BN = ("beta", "gamma", "mean", "var")


def _order(importance: np.ndarray, bands: Optional[Sequence[int]]) -> np.ndarray:
    """Indices sorting channels by decreasing importance, inside each band."""
    n = len(importance)
    edges = sorted({int(b) for b in (bands or ()) if 0 < int(b) < n}) + [n]
    out, lo = [], 0
    for hi in edges:
        part = np.arange(lo, hi)
        out.append(part[np.argsort(-importance[lo:hi], kind="stable")])
        lo = hi
    return np.concatenate(out)


class _Params:
    """Named parameter arrays, permuted in place and written back at the end."""

    def __init__(self, net):
        self.vars = net.get_parameters()
        self.arrays = {k: v.d.copy() for k, v in self.vars.items()}
        self.changed = set()

    def has(self, key) -> bool:
        return key in self.arrays

    def importance(self, key: str, axis: int) -> np.ndarray:
        a = np.abs(self.arrays[key])
        return a.sum(axis=tuple(i for i in range(a.ndim) if i != axis))

    def take(self, key: str, idx: np.ndarray, axis: int):
        self.arrays[key] = np.take(self.arrays[key], idx, axis=axis)
        self.changed.add(key)

    def produce(self, prefix: str, idx: np.ndarray, weight: str = "conv/W"):
        """Permute the output channels of a ConvBN ``prefix`` (its filters and BatchNorm)."""
        self.take(f"{prefix}/{weight}", idx, 0)
        for b in BN:
            self.take(f"{prefix}/bn/{b}", idx, 1)

    def write(self):
        for k in self.changed:
            self.vars[k].d = self.arrays[k]


def _permute_mid(p: _Params, unit: str, first: str, second: str, bands):
    """Sort the output channels of ``unit/first`` by the importance of ``unit/second``'s inputs."""
    idx = _order(p.importance(f"{unit}/{second}/conv/W", 1), bands)
    p.take(f"{unit}/{second}/conv/W", idx, 1)
    p.produce(f"{unit}/{first}", idx)


def reorganize_middle(net, bands: Optional[Dict[int, Sequence[int]]] = None) -> int:
    """Sort every bottleneck's middle channels (see module doc); ``bands``: per stage index, the
    middle widths already trained. Returns the number of bottlenecks sorted."""
    bands = bands or {}
    net.commit_bn_statistics()
    p = _Params(net)
    n = 0
    for s in range(N_STAGES):
        for u in range(STAGE_SLOTS[s]):
            unit = f"stages/{s}/{u}"
            if not p.has(f"{unit}/conv1/conv/W"):
                continue
            _permute_mid(p, unit, "conv2", "conv3", bands.get(s))
            _permute_mid(p, unit, "conv1", "conv2", bands.get(s))
            n += 1
    p.write()
    return n


def _stage_units(p: _Params, s: int) -> List[str]:
    return [f"stages/{s}/{u}" for u in range(STAGE_SLOTS[s]) if p.has(f"stages/{s}/{u}/conv1/conv/W")]


def _consumers(p: _Params, s: int) -> List[tuple]:
    """(key, input axis) of every weight that reads stage ``s``'s output (``s = -1``: the stem's)."""
    units = _stage_units(p, s) if s >= 0 else []
    out = [(f"{u}/conv1/conv/W", 1) for u in units[1:]]
    if s + 1 < N_STAGES:
        first = _stage_units(p, s + 1)[0]
        out += [(f"{first}/conv1/conv/W", 1), (f"{first}/shortcut/conv/W", 1)]
    else:
        out.append(("neck/0/deconv/W", 0))   # deconvolution weights are (in, out, k, k)
    return out


def reorganize_width(net, bands: Optional[Dict[str, Sequence[int]]] = None) -> int:
    """Sort the stem's channels and each stage's output channels (see module doc).

    ``bands``: {"stem_mid": [...], "stem_out": [...], "stage0": [...], ...} (optional per group).
    Returns the number of channel groups sorted."""
    bands = bands or {}
    net.commit_bn_statistics()
    p = _Params(net)
    # stem middle channels: conv1 produces them, the residual unit reads and re-produces them
    # (its sum with the identity keeps the order), conv3 reads them
    imp = p.importance("stem/conv3/conv/W", 1)
    if p.has("stem/res/conv/W"):
        imp = imp + p.importance("stem/res/conv/W", 1)
    idx = _order(imp, bands.get("stem_mid"))
    p.produce("stem/conv1", idx)
    if p.has("stem/res/conv/W"):
        p.take("stem/res/conv/W", idx, 1)
        p.produce("stem/res", idx)
    p.take("stem/conv3/conv/W", idx, 1)
    groups = 1
    for s in range(-1, N_STAGES):
        cons = _consumers(p, s)
        imp = sum(p.importance(k, ax) for k, ax in cons)
        idx = _order(imp, bands.get("stem_out" if s < 0 else f"stage{s}"))
        for k, ax in cons:
            p.take(k, idx, ax)
        if s < 0:
            p.produce("stem/conv3", idx)
        else:
            units = _stage_units(p, s)
            for u in units:
                p.produce(f"{u}/conv3", idx)
            p.produce(f"{units[0]}/shortcut", idx)
        groups += 1
    p.write()
    return groups
