"""The layers of a path: the decomposition that FLOPs, parameters and latency are sums over.

A path of the detector is a sequence of :class:`Layer` s, in network order:

* ``stem_conv1``: input normalisation + 3x3 s2 conv-BN-ReLU (3 -> stem mid channels);
* ``stem_res``: the stem's residual 3x3 conv-BN-ReLU + identity (only when ``d[0] == 2``);
* ``stem_conv3``: 3x3 conv-BN-ReLU (stem mid -> stem out) + 3x3 s2 max-pool;
* ``bottleneck``: one unit (1x1, 3x3 carrying the stride, 1x1, shortcut, ReLU); the first unit of
  a stage has the avg-pool + 1x1 conv shortcut (``shortcut=True``);
* ``deconv``: one CenterNet up-convolution (4x4 s2 deconv-BN-ReLU), three of them;
* ``heads``: the three heads (heatmap, size, offset: 3x3 conv + ReLU + 1x1 conv each) together.

A layer is identified by what decides its cost (kind, input size, channels, stride), not by its
position: two units of a stage with the same widths are the same layer. Every operation of the
network belongs to exactly one layer, so a per-layer latency table sums to a whole network.
``layer_macs`` uses ``flops.py``'s formulas (summed over a path: the FLOPs definition, tested)
and ``layer_params`` is the one parameter count (``params.py``).
"""
from typing import Dict, Iterable, List, NamedTuple, Tuple

from .arch import (BASE_DEPTHS, DEPTH_CHOICES, EXPAND_CHOICES, N_STAGES, STAGE_FIRST_SLOT, STAGE_STRIDES,
                   STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch)
from .config import SupernetConfig
from .flops import _down as down
from .flops import conv_macs, stage_input_sizes, unit_macs

KINDS = ("stem_conv1", "stem_res", "stem_conv3", "bottleneck", "deconv", "heads")
BACKBONE_KINDS = KINDS[:4]
HEAD_OUTPUTS = (2, 2)  # size and offset heads, after the C-channel heatmap head
DECONV_KERNEL = 4


class Layer(NamedTuple):
    kind: str
    size: int            # input height (= width)
    cin: int
    cout: int            # output channels (heads: the heatmap's C)
    mid: int = 0         # bottleneck width; head hidden channels; 0 otherwise
    stride: int = 1
    shortcut: bool = False  # bottleneck with the avg-pool + 1x1 conv shortcut

    @property
    def out_size(self) -> int:
        if self.kind in ("stem_conv1", "stem_conv3"):
            return down(self.size, 2)
        if self.kind == "bottleneck":
            return down(self.size, self.stride)
        if self.kind == "deconv":
            return self.size * 2
        return self.size

    def key(self) -> str:
        """The layer's name in a latency table (once-for-all's ``kind-input:HxWxC-output:HxWxC-...``)."""
        o = self.out_size
        parts = [self.kind, f"input:{self.size}x{self.size}x{self.cin}", f"output:{o}x{o}x{self.cout}"]
        if self.kind == "bottleneck":
            parts += [f"mid:{self.mid}", f"stride:{self.stride}", f"shortcut:{'conv' if self.shortcut else 'identity'}"]
        elif self.kind == "heads":
            parts += [f"mid:{self.mid}"]
        return "-".join(parts)


# --- building blocks of the decomposition (also used to tabulate costs per choice) ------------
def stage_sizes(input_size: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(input size of each stage, output size of each stage)."""
    ins = stage_input_sizes(input_size)
    return ins, tuple(down(s, st) for s, st in zip(ins, STAGE_STRIDES))


def stem_layers(cfg: SupernetConfig, input_size: int, w_mid: int, w_out: int, residual: bool) -> List[Layer]:
    mid, out = cfg.stem_mid_list()[w_mid], cfg.stem_out_list()[w_out]
    s = down(input_size, 2)
    layers = [Layer("stem_conv1", input_size, 3, mid)]
    if residual:
        layers.append(Layer("stem_res", s, mid, mid))
    layers.append(Layer("stem_conv3", s, mid, out))
    return layers


def unit_layer(cfg: SupernetConfig, input_size: int, stage: int, pos: int, cin: int, cout: int,
               expand: float) -> Layer:
    """Unit ``pos`` of ``stage`` (``cin``: the stage's input channels for ``pos == 0``, else ignored)."""
    ins, outs = stage_sizes(input_size)
    mid = cfg.mid_channels(cout, expand)
    if pos == 0:
        return Layer("bottleneck", ins[stage], cin, cout, mid, STAGE_STRIDES[stage], True)
    return Layer("bottleneck", outs[stage], cout, cout, mid, 1, False)


def head_layers(cfg: SupernetConfig, input_size: int, cin: int) -> List[Layer]:
    """The three up-convolutions and the heads, from the stride-32 features of ``cin`` channels."""
    s = stage_sizes(input_size)[1][-1]
    layers = []
    for c in cfg.neck():
        layers.append(Layer("deconv", s, cin, c))
        cin, s = c, s * 2
    layers.append(Layer("heads", s, cin, cfg.num_classes, cfg.head()))
    return layers


def path_layers(arch, cfg: SupernetConfig, input_size: int, part: str = "detector") -> List[Layer]:
    """The layers of ``arch`` in network order; ``part`` in {'backbone', 'head', 'detector'}."""
    if part not in ("backbone", "head", "detector"):
        raise ValueError(f"part={part!r}: expected 'backbone', 'head' or 'detector'")
    arch = Arch.from_dict(arch)
    ch = cfg.arch_channels(arch)
    layers = []
    if part != "head":
        layers += stem_layers(cfg, input_size, arch.w[0], arch.w[1], arch.stem_residual)
        cin = ch["stem_out"]
        for s in range(N_STAGES):
            cout = ch["stage_out"][s]
            for pos in range(arch.stage_depth(s)):
                layers.append(unit_layer(cfg, input_size, s, pos, cin, cout, arch.e[STAGE_FIRST_SLOT[s] + pos]))
            cin = cout
    if part != "backbone":
        layers += head_layers(cfg, input_size, ch["stage_out"][-1])
    return layers


# --- costs of one layer ----------------------------------------------------------------------
def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates of the conv / deconv layers of ``layer`` (pooling, BN, activations and
    additions are not counted, as in once-for-all), with ``flops.py``'s formulas; summed over a
    path they equal ``flops.backbone_macs + head_macs`` (tested)."""
    k, s, o = layer.kind, layer.size, layer.out_size
    if k in ("stem_conv1", "stem_res"):
        return conv_macs(o, layer.cin, layer.cout, 3)
    if k == "stem_conv3":
        return conv_macs(s, layer.cin, layer.cout, 3)  # the conv runs before the max-pool
    if k == "bottleneck":
        return unit_macs(s, layer.cin, layer.mid, layer.cout, layer.stride, layer.shortcut)
    if k == "deconv":
        return layer.cin * layer.cout * DECONV_KERNEL ** 2 * s * s  # every input pixel scatters the kernel
    if k == "heads":
        hc = layer.mid
        return sum(conv_macs(s, layer.cin, hc, 3) + conv_macs(s, hc, oc, 1) for oc in (layer.cout,) + HEAD_OUTPUTS)
    raise ValueError(f"unknown layer kind {k!r}")


def layer_params(layer: Layer) -> int:
    """Trainable parameters of ``layer``: conv / deconv weights, conv biases (heads only) and the
    BatchNorm scale and shift. BatchNorm running statistics are not counted (they are statistics,
    not trained), nor is the input normalisation (fixed constants)."""
    k, ci, co, m = layer.kind, layer.cin, layer.cout, layer.mid
    if k in ("stem_conv1", "stem_res", "stem_conv3"):
        return ci * co * 9 + 2 * co
    if k == "bottleneck":
        n = ci * m + 2 * m + m * m * 9 + 2 * m + m * co + 2 * co
        return n + (ci * co + 2 * co if layer.shortcut else 0)
    if k == "deconv":
        return ci * co * DECONV_KERNEL ** 2 + 2 * co
    if k == "heads":
        return sum(ci * m * 9 + m + m * oc + oc for oc in (co,) + HEAD_OUTPUTS)
    raise ValueError(f"unknown layer kind {k!r}")


# --- every layer of a space ------------------------------------------------------------------
def _with_choices(space):
    """``space`` if it has ``choices``, else its base space ``space.space`` if that has them (a
    pruned space), else None."""
    for sp in (space, getattr(space, "space", None)):
        if isinstance(getattr(sp, "choices", None), dict):
            return sp
    return None


def decision_choices(space) -> Dict:
    """The choices of every decision of ``space`` (of its base space ``space.space`` for a pruned
    space); the full OFA choices (a superset) for a space known only by ``contains``."""
    sp = _with_choices(space)
    if sp is not None:
        return sp.choices
    from .spaces import decision_points
    full = {}
    for kind, i in decision_points():
        full[(kind, i)] = ((STEM_DEPTH_CHOICES if i == 0 else DEPTH_CHOICES) if kind == "d"
                           else tuple(range(len(WIDTH_CHOICES))) if kind == "w" else EXPAND_CHOICES)
    return full


def stage_options(space, stage: int) -> List[Tuple[int, int]]:
    """The (depth, width index) settings ``stage`` may take in ``space`` (CompOFA*: its pairs)."""
    sp = _with_choices(space) or space
    if getattr(sp, "coupled", False) and isinstance(getattr(sp, "pairs", None), dict):
        return list(sp.pairs[stage])
    ch = decision_choices(space)
    return [(d, w) for d in ch[("d", stage + 1)] for w in ch[("w", stage + 2)]]


def space_layers(space, cfg: SupernetConfig, input_size: int, part: str = "detector") -> List[Layer]:
    """Every distinct layer of the paths of ``space``, once each, in network order. A space
    without ``choices`` (e.g. a pruned space known only by ``contains``) gets the layers of the
    full OFA space, a superset."""
    ch = decision_choices(space)
    seen: Dict[Layer, None] = {}

    def add(layers: Iterable[Layer]):
        for lay in layers:
            seen.setdefault(lay, None)

    if part != "head":
        for w0 in ch[("w", 0)]:
            for w1 in ch[("w", 1)]:
                for d0 in ch[("d", 0)]:
                    add(stem_layers(cfg, input_size, w0, w1, d0 == max(STEM_DEPTH_CHOICES)))
        prev = sorted({cfg.stem_out_list()[w] for w in ch[("w", 1)]})
        for s in range(N_STAGES):
            opts = stage_options(space, s)
            for d, w in opts:
                cout = cfg.stage_out_list(s)[w]
                for pos in range(BASE_DEPTHS[s] + d):
                    for e in ch[("e", STAGE_FIRST_SLOT[s] + pos)]:
                        for cin in (prev if pos == 0 else (cout,)):
                            add([unit_layer(cfg, input_size, s, pos, cin, cout, e)])
            prev = sorted({cfg.stage_out_list(s)[w] for _, w in opts})
    if part != "backbone":
        last = stage_options(space, N_STAGES - 1)
        for cin in sorted({cfg.stage_out_list(N_STAGES - 1)[w] for _, w in last}):
            add(head_layers(cfg, input_size, cin))
    return list(seen)

