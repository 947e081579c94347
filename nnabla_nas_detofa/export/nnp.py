"""Save an extracted (static) detector as a .nnp file for Neural Network Console / NNabla.

The file holds exactly the network's parameters (its own parameter scope, never nnabla's global
one), one network ``name`` with input ``x`` (raw RGB 0..255, N x 3 x S x S; the network
normalises) and outputs ``heatmap`` (logits), ``wh``, ``reg`` at stride 4, and an executor
``runtime``. A .nnp has no free-text field: the names are its documentation
(:func:`io_description` is the full text, also written into ONNX files).
"""
import nnabla as nn
from nnabla.utils.save import save

from ..atomic import atomic_path
from ..nets.detector import IMAGE_MEAN, IMAGE_STD, OUTPUT_STRIDE

INPUT = "x"
OUTPUTS = ("heatmap", "wh", "reg")
EXECUTOR = "runtime"


def io_description() -> dict:
    """What the exported network takes and gives: {"summary", "input", "outputs": {name: text}}."""
    s = OUTPUT_STRIDE
    mean = ", ".join(f"{v:g}" for v in IMAGE_MEAN)
    std = ", ".join(f"{v:g}" for v in IMAGE_STD)
    return {
        "summary": "DetOFA detector (OFA-ResNet50 path + CenterNet head), exported by nnabla-nas-detofa. "
                   f"Input {INPUT!r}; outputs {', '.join(repr(o) for o in OUTPUTS)} at stride {s}.",
        "input": f"float32 N x 3 x S x S, NCHW, RGB, raw pixel values 0..255 (S a multiple of 32; images "
                 f"letterboxed to S x S, aspect kept, padding 0); the network subtracts the ImageNet mean "
                 f"({mean}) and divides by the std ({std}) itself",
        "outputs": {
            "heatmap": f"float32 N x C x S/{s} x S/{s}: class-centre heatmap logits (apply a sigmoid); a detection "
                       "is a 3x3 local maximum (max-pool peak), e.g. the top 100 over classes and positions",
            "wh": f"float32 N x 2 x S/{s} x S/{s}: box width, height in output cells (x {s} for input pixels)",
            "reg": f"float32 N x 2 x S/{s} x S/{s}: sub-cell centre offset (x, y) in output cells; a peak at "
                   f"column i, row j is the box centre ((i + reg_x) * {s}, (j + reg_y) * {s}), size wh * {s}",
        },
    }


def export_nnp(net, path: str, input_size: int, batch_size: int = 1, name: str = "detofa") -> str:
    """Write ``net`` (a StaticDetector) to ``path`` atomically; returns the path."""
    net.apply(training=False)
    x = nn.Variable((batch_size, 3, input_size, input_size))
    with net.parameter_scope(), atomic_path(path, suffix=".nnp") as tmp:
        outs = net(x)
        save(tmp, {"networks": [{"name": name, "batch_size": batch_size, "outputs": dict(zip(OUTPUTS, outs)),
                                 "names": {INPUT: x}}],
                   "executors": [{"name": EXECUTOR, "network": name, "data": [INPUT], "output": list(OUTPUTS)}]},
             variable_batch_size=False)
    return path
