"""Networks: elastic layers, the DetOFA supernet, static extraction, graph MAC counting.

``detofa_resnet50`` is the module NNablaNAS looks networks up by (``SearchNet``/``TrainNet``).
"""
from . import detofa_resnet50
from .detector import IMAGE_MEAN, IMAGE_STD, OUTPUT_STRIDE, DetectorNet, read_parameters
from .graph_flops import count_graph_macs
from .static import StaticDetector, extract
from .supernet import DetOFASupernet

__all__ = ["DetOFASupernet", "StaticDetector", "extract", "count_graph_macs", "DetectorNet", "read_parameters",
           "IMAGE_MEAN", "IMAGE_STD", "OUTPUT_STRIDE", "detofa_resnet50"]
