"""Export of extracted detectors: Neural Network Console / NNabla .nnp files and ONNX (through
nnabla's converter), each checked against the network it came from (``export_path``)."""
from .check import FORMATS, TOLERANCE
from .nnp import INPUT, OUTPUTS, export_nnp, io_description
from .onnx import OPSET, ExportError, export_onnx
from .path import EXTENSIONS, export_path

__all__ = ["FORMATS", "TOLERANCE", "INPUT", "OUTPUTS", "OPSET", "EXTENSIONS", "ExportError", "export_nnp",
           "export_onnx", "export_path", "io_description"]
