"""Analytic FLOPs: multiply-accumulates of conv / deconv / linear layers, in MFLOPs.

The one definition used everywhere (buckets, reports, search constraints). The backbone part
follows once-for-all's ``ResNet50LatencyTable.count_flops_given_config`` (classifier excluded);
the detector adds the CenterNet up-convolutions and heads at the same input size. Both are sums
over the layers of ``layers.path_layers`` (the decomposition latency tables and parameter counts
use too).
"""
from functools import lru_cache

from .arch import Arch
from .config import SupernetConfig, check_input_size
from .layers import conv_macs, layer_macs, path_layers  # noqa: F401  (conv_macs: re-exported)

PARTS = ("backbone", "head", "detector")


def backbone_macs(arch: Arch, cfg: SupernetConfig, input_size: int) -> int:
    """Stem and bottleneck units (``layers.path_layers``, part 'backbone')."""
    return sum(layer_macs(lay) for lay in path_layers(arch, cfg, input_size, "backbone"))


def head_macs(arch: Arch, cfg: SupernetConfig, input_size: int) -> int:
    """CenterNet: three 4x4 stride-2 deconvolutions (stride 32 -> 4), then three 3x3 + 1x1 heads."""
    return sum(layer_macs(lay) for lay in path_layers(arch, cfg, input_size, "head"))


@lru_cache(maxsize=1 << 16)
def _mflops(arch: Arch, cfg: SupernetConfig, input_size: int, part: str) -> float:
    if part == "backbone":
        macs = backbone_macs(arch, cfg, input_size)
    elif part == "head":
        macs = head_macs(arch, cfg, input_size)
    else:
        macs = backbone_macs(arch, cfg, input_size) + head_macs(arch, cfg, input_size)
    return macs / 1e6


def mflops(arch: Arch, cfg: SupernetConfig, input_size: int, part: str = "detector") -> float:
    """MFLOPs (MACs / 1e6) of ``part`` in {'backbone', 'head', 'detector'} for one image."""
    if part not in PARTS:
        raise ValueError(f"part={part!r}: expected one of {PARTS}")
    if part != "backbone":
        check_input_size(input_size)
    return _mflops(Arch.from_dict(arch), cfg, int(input_size), part)
