"""Multiply-accumulates counted on an NNabla graph, to check the analytic FLOPs (``space.flops``).

Counts, per sample, Convolution (prod(W.shape) x output positions), Deconvolution
(prod(W.shape) x input positions: every input pixel scatters the whole kernel) and Affine
(prod(W.shape) x rows per sample). Pooling, BatchNorm, activations and additions are not counted,
as in once-for-all.
"""
import nnabla.functions as F
import numpy as np


def _prod(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _spatial(shape, base_axis, channel_last):
    return shape[base_axis:-1] if channel_last else shape[base_axis + 1:]


def function_macs(func) -> int:
    """MACs per sample of one graph function (0 for the types not counted)."""
    kind = func.info.type_name
    args = func.info.args
    if kind not in ("Convolution", "Deconvolution", "Affine"):
        return 0
    x, w = func.inputs[0].shape, func.inputs[1].shape
    base_axis = int(args.get("base_axis", 1))
    if kind == "Affine":
        return _prod(w) * _prod(x[1:base_axis])
    channel_last = bool(args.get("channel_last", False))
    if kind == "Convolution":
        return _prod(w) * _prod(_spatial(func.outputs[0].shape, base_axis, channel_last))
    return _prod(w) * _prod(_spatial(x, base_axis, channel_last))


def count_graph_macs(outputs) -> int:
    """Total MACs per sample of the graph(s) leading to ``outputs`` (a Variable or a sequence);
    functions shared by several outputs are counted once."""
    outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    root = outs[0] if len(outs) == 1 else F.sink(*outs)
    total = [0]

    def visit(func):
        total[0] += function_macs(func)

    root.visit(visit)
    return total[0]
