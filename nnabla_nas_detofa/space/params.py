"""Analytic parameter count of a path: the one definition (search constraints, reports).

Counted: conv and deconv weights, conv biases (the heads' convs; backbone and neck convs have
none) and every BatchNorm's scale and shift, i.e. the trainable parameters of the extracted
static network. Not counted: BatchNorm running mean / variance (statistics, not trained; as
PyTorch's ``parameters()`` and once-for-all's counts) and the input normalisation constants.
Computed as the sum of ``layers.layer_params`` over ``layers.path_layers``; tests check it
against the parameters of ``nets.static.StaticDetector`` for many archs.
"""
from functools import lru_cache

from .arch import Arch
from .config import SupernetConfig
from .layers import layer_params, path_layers

PARTS = ("backbone", "head", "detector")


@lru_cache(maxsize=1 << 16)
def _params(arch: Arch, cfg: SupernetConfig, part: str) -> int:
    # parameter counts do not depend on the input size; any valid size gives the same layers' shapes
    return sum(layer_params(lay) for lay in path_layers(arch, cfg, 64, part))


def param_count(arch, cfg: SupernetConfig, part: str = "detector") -> int:
    """Number of trainable parameters of ``part`` in {'backbone', 'head', 'detector'} of a path."""
    if part not in PARTS:
        raise ValueError(f"part={part!r}: expected one of {PARTS}")
    return _params(Arch.from_dict(arch), cfg, part)


def mparams(arch, cfg: SupernetConfig, part: str = "detector") -> float:
    """``param_count`` in millions."""
    return param_count(arch, cfg, part) / 1e6
