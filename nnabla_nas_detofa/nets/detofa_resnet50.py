"""The network module NNablaNAS looks up as ``contrib.detofa_resnet50`` (``SearchNet``/``TrainNet``).

Registration into ``nnabla_nas.contrib`` is done by ``nnabla_nas_detofa.registry``.
"""

import numpy as np

from ..space import Arch, ArchError, ConfigError, load_archs, space_from_spec
from .detector import read_parameters
from .static import StaticDetector
from .supernet import DetOFASupernet, check_weight_sources, load_pretrained, network_config

SearchNet = DetOFASupernet

def resolve_arch(arch, where="arch") -> Arch:
    """An Arch from an Arch, a dict, a JSON string, or a file holding exactly one arch."""
    if isinstance(arch, str):
        if not arch.lstrip().startswith("{"):
            archs = load_archs(arch)
            if len(archs) != 1:
                raise ArchError(f"{where}: file {arch} holds {len(archs)} archs, expected one")
            return archs[0]
        return Arch.from_json(arch, where)
    return Arch.from_dict(arch, where)

def is_supernet_weights(arrays, net: StaticDetector) -> bool:
    """Whether parameter ``arrays`` are a supernet's (marked as such, or larger than ``net``'s)."""
    if StaticDetector.SUPERNET_MARKER in arrays:
        return True
    return any(tuple(np.shape(arrays[k])) != tuple(p.shape) for k, p in net.get_parameters().items() if k in arrays)


def TrainNet(arch=None, weights=None, space="ofa", bn_calibration=None, pretrained=None, **kw):  # noqa: N802
    """The static network of ``arch`` (default: the largest path of ``space``).

    ``weights``: a weight file of this static network, or a supernet weight file: the path's
    leading weight blocks are taken (exactly ``extract``) and, since a supernet's BatchNorm
    statistics belong to every path it trained, they are re-calibrated on ``bn_calibration``
    (an iterable of (N, 3, H, W) raw image batches, or a callable returning one; the launcher
    passes the run's fixed calibration set of training images). Without it a supernet file is
    refused. ``pretrained``: an ImageNet OFA-ResNet50 supernet (``supernet.load_pretrained``) whose
    backbone's leading blocks this path starts from, not together with ``weights``. Other keyword
    arguments are the ``SupernetConfig`` fields; unknown ones must be null.
    """
    cfg = network_config(kw, "TrainNet")
    check_weight_sources(weights, pretrained, "TrainNet")
    arch = space_from_spec(space).extreme(True) if arch is None else resolve_arch(arch)
    net = StaticDetector(cfg, arch)
    net.pretrained_report = None
    if pretrained:
        load_pretrained(net, pretrained)
    if weights:
        arrays = read_parameters(weights)
        net.copy_from(arrays, where=str(weights))
        if is_supernet_weights(arrays, net):
            if bn_calibration is None:
                raise ConfigError(f"TrainNet: {weights} holds supernet weights, whose BatchNorm statistics belong to "
                                  f"other paths; give training images to re-calibrate them (bn_calibration=..., "
                                  f"which an experiment file's training data provides) or a weight file of "
                                  f"this static network")
            net.recalibrate_bn(bn_calibration() if callable(bn_calibration) else bn_calibration)
    return net
