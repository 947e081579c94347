"""Run an exported file the way a deployment would, and compare it with the network it came from.

``.nnp`` files run in nnabla's ``NnpLoader`` (in a fresh parameter scope), ONNX files in
onnxruntime (CPU). The comparison error of one output is ``max |file - reference|`` divided by
``max(1, max |reference|)``: absolute for outputs of magnitude up to 1, relative above.
"""
from collections import OrderedDict
from typing import Dict, List, Sequence

import nnabla as nn
import numpy as np

from .nnp import INPUT, OUTPUTS

TOLERANCE = 1e-4
FORMATS = ("nnp", "onnx")


def check_images(batch_size: int, input_size: int, seed: int = 0) -> np.ndarray:
    """A fixed batch of raw images (uniform 0..255, float32) to compare outputs on."""
    return np.random.default_rng(seed).uniform(0, 255, (batch_size, 3, input_size, input_size)).astype(np.float32)


def network_outputs(net, x: np.ndarray) -> List[np.ndarray]:
    """(heatmap, wh, reg) of ``net`` (any DetectorNet, in its current mode and arch) for images ``x``."""
    v = nn.Variable(x.shape)
    v.d = x
    with nn.no_grad():
        outs = net(v)
    nn.forward_all(outs, clear_buffer=True)
    return [o.d.copy() for o in outs]


def nnp_parameters(path: str) -> Dict[str, tuple]:
    """{name: shape} of the parameters a .nnp file carries (``nn.load_parameters`` into a fresh scope)."""
    with nn.parameter_scope("", OrderedDict()):
        nn.load_parameters(path)
        return OrderedDict((k, tuple(v.shape)) for k, v in nn.get_parameters(grad_only=False).items())


def run_nnp(path: str, x: np.ndarray, network: str = None) -> List[np.ndarray]:
    """Outputs (heatmap, wh, reg) of a .nnp file in nnabla's NnpLoader for images ``x``."""
    from nnabla.utils import nnp_graph
    with nn.parameter_scope("", OrderedDict()):
        loader = nnp_graph.NnpLoader(path)
        name = network or loader.get_network_names()[0]
        g = loader.get_network(name, batch_size=x.shape[0])
        g.inputs[INPUT].d = x
        outs = [g.outputs[k] for k in OUTPUTS]
        nn.forward_all(outs, clear_buffer=True)
        return [o.d.copy() for o in outs]


def run_onnx(path: str, x: np.ndarray) -> List[np.ndarray]:
    """Outputs (heatmap, wh, reg) of an ONNX file in onnxruntime (CPU) for images ``x``."""
    from .onnx import ONNX_EXTRA, ExportError
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ExportError(f"checking an ONNX file needs onnxruntime ({err}); install it with `{ONNX_EXTRA}`") \
            from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return [np.asarray(a) for a in sess.run(list(OUTPUTS), {INPUT: x.astype(np.float32)})]


def run_file(path: str, fmt: str, x: np.ndarray, network: str = None) -> List[np.ndarray]:
    if fmt == "nnp":
        return run_nnp(path, x, network)
    if fmt == "onnx":
        return run_onnx(path, x)
    raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")


def compare(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> Dict[str, Dict[str, float]]:
    """{output: {"max_abs_error", "error"}} (``error``: max abs error / max(1, max |reference|))."""
    out = OrderedDict()
    for name, r, g in zip(OUTPUTS, reference, got):
        r, g = np.asarray(r, np.float64), np.asarray(g, np.float64)
        if r.shape != g.shape:
            raise ValueError(f"output {name!r}: shape {g.shape}, expected {r.shape}")
        diff = float(np.max(np.abs(r - g))) if r.size else 0.0
        if not np.isfinite(g).all():
            diff = float("inf")
        out[name] = {"max_abs_error": diff, "error": diff / max(1.0, float(np.max(np.abs(r))) if r.size else 1.0)}
    return out
