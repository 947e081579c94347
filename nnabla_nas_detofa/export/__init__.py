"""Export of extracted detectors: Neural Network Console / NNabla .nnp files."""
from .nnp import export_nnp

__all__ = ["export_nnp"]
