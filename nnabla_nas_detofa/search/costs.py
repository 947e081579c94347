"""A per-layer cost summed over a path, tabulated per choice: one path costs about 25 lookups.

FLOPs, parameters and table latency are all sums over ``space.layers.path_layers`` of a cost per
layer. A search evaluates them for every candidate child (tens of thousands per run), where
``path_layers`` (building ~25 layer records) would dominate; :class:`AdditiveCost` computes each
layer's cost once per choice (stem widths; per stage: previous width, width, expand ratio;
last stage width for the neck) and sums table entries. The result equals the sum over
``path_layers`` exactly for integer costs (MACs, parameters) and to float rounding otherwise
(tested).
"""
from typing import Callable, Optional

from ..space.arch import BASE_DEPTHS, EXPAND_CHOICES, N_STAGES, STAGE_FIRST_SLOT, WIDTH_CHOICES, Arch
from ..space.config import SupernetConfig
from ..space.layers import Layer, head_layers, path_layers, stem_layers, unit_layer

_E_INDEX = {e: i for i, e in enumerate(EXPAND_CHOICES)}
_NW = len(WIDTH_CHOICES)


class MissingLayer(KeyError):
    """A layer the cost function has no value for (e.g. absent from a latency table)."""


class AdditiveCost:
    """``cost(arch)`` = sum of ``layer_cost(layer)`` over the layers of ``part`` of the path.

    ``layer_cost`` may raise ``KeyError`` for a layer it does not know; such a layer only fails
    the paths that use it (``MissingLayer`` naming the layer). The sum is divided by ``divide_by``
    (1e6 for MFLOPs from MACs: the same division as ``space.flops.mflops``, so equal to the bit)."""

    def __init__(self, cfg: SupernetConfig, input_size: int, layer_cost: Callable[[Layer], float],
                 part: str = "detector", divide_by: float = 1, name: str = "cost"):
        if part not in ("backbone", "head", "detector"):
            raise ValueError(f"part={part!r}: expected 'backbone', 'head' or 'detector'")
        self.cfg, self.input_size, self.part, self.divide_by, self.name = cfg, int(input_size), part, divide_by, name
        self._layer_cost = layer_cost

        def cost(layers):
            total = 0
            for lay in layers:
                try:
                    total += layer_cost(lay)
                except KeyError:
                    return _Missing(lay)
            return total

        bb, hd = part != "head", part != "backbone"
        r = range(_NW)
        if bb:
            self.stem1 = [cost(stem_layers(cfg, input_size, w0, 0, False)[:1]) for w0 in r]
            self.stem_res = [cost(stem_layers(cfg, input_size, w0, 0, True)[1:2]) for w0 in r]
            self.stem3 = [[cost(stem_layers(cfg, input_size, w0, w1, False)[1:]) for w1 in r] for w0 in r]
            self.first, self.unit = [], []
            for s in range(N_STAGES):
                prev = cfg.stem_out_list() if s == 0 else cfg.stage_out_list(s - 1)
                outs = cfg.stage_out_list(s)
                self.first.append([[[cost([unit_layer(cfg, input_size, s, 0, prev[wp], outs[w], e)])
                                     for e in EXPAND_CHOICES] for w in r] for wp in r])
                self.unit.append([[cost([unit_layer(cfg, input_size, s, 1, outs[w], outs[w], e)])
                                   for e in EXPAND_CHOICES] for w in r])
        if hd:
            last = cfg.stage_out_list(N_STAGES - 1)
            self.head = [cost(head_layers(cfg, input_size, last[w])) for w in r]

    def raw(self, arch: Arch):
        """The unscaled sum (an int for integer costs)."""
        d, e, w = arch.d, arch.e, arch.w
        total = 0
        if self.part != "head":
            total = self.stem1[w[0]] + self.stem3[w[0]][w[1]]
            if arch.stem_residual:
                total += self.stem_res[w[0]]
            wp = w[1]
            for s in range(N_STAGES):
                ws, k = w[s + 2], STAGE_FIRST_SLOT[s]
                total += self.first[s][wp][ws][_E_INDEX[e[k]]]
                u = self.unit[s][ws]
                for j in range(k + 1, k + BASE_DEPTHS[s] + d[s + 1]):
                    total += u[_E_INDEX[e[j]]]
                wp = ws
        if self.part != "backbone":
            total += self.head[w[-1]]
        return total

    def __call__(self, arch) -> float:
        try:
            v = self.raw(arch)
        except TypeError:  # a _Missing entry took part in the sum
            self._raise_missing(Arch.from_dict(arch))
        return v / self.divide_by if self.divide_by != 1 else v

    def _raise_missing(self, arch: Arch):
        for lay in path_layers(arch, self.cfg, self.input_size, self.part):
            try:
                self._layer_cost(lay)
            except KeyError:
                raise MissingLayer(f"{self.name}: no value for layer {lay.key()}") from None
        raise MissingLayer(f"{self.name}: a layer of {arch} has no value")  # pragma: no cover


class _Missing:
    """A table cell whose layer has no cost: any arithmetic with it raises TypeError."""

    __slots__ = ("layer",)

    def __init__(self, layer: Optional[Layer]):
        self.layer = layer
