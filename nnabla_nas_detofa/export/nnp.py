"""Save an extracted (static) detector as a .nnp file for Neural Network Console / NNabla.

The file holds exactly the network's parameters (its own parameter scope, never nnabla's global
one), one network ``name`` with input ``x`` (raw RGB 0..255, N x 3 x S x S; the network
normalises) and outputs ``heatmap`` (logits), ``wh``, ``reg`` at stride 4, and an executor
``runtime``.
"""
import nnabla as nn
from nnabla.utils.save import save

from ..atomic import atomic_path

OUTPUTS = ("heatmap", "wh", "reg")


def export_nnp(net, path: str, input_size: int, batch_size: int = 1, name: str = "detofa") -> str:
    """Write ``net`` (a StaticDetector) to ``path`` atomically; returns the path."""
    net.apply(training=False)
    x = nn.Variable((batch_size, 3, input_size, input_size))
    with net.parameter_scope(), atomic_path(path, suffix=".nnp") as tmp:
        outs = net(x)
        save(tmp, {"networks": [{"name": name, "batch_size": batch_size, "outputs": dict(zip(OUTPUTS, outs)),
                                 "names": {"x": x}}],
                   "executors": [{"name": "runtime", "network": name, "data": ["x"], "output": list(OUTPUTS)}]},
             variable_batch_size=False)
    return path
