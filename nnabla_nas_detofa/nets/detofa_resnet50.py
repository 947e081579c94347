"""The network module NNablaNAS looks up as ``contrib.detofa_resnet50`` (``SearchNet``/``TrainNet``).

Registration into ``nnabla_nas.contrib`` is done by ``nnabla_nas_detofa.registry``.
"""
import os

from ..space import Arch, ArchError, SupernetConfig, load_archs, space_from_spec
from .static import StaticDetector
from .supernet import CONFIG_KEYS, DetOFASupernet, check_ignored

SearchNet = DetOFASupernet


def resolve_arch(arch, where="arch") -> Arch:
    """An Arch from an Arch, a dict, a JSON string, or a file holding exactly one arch."""
    if isinstance(arch, str):
        if os.path.isfile(arch):
            archs = load_archs(arch)
            if len(archs) != 1:
                raise ArchError(f"{where}: file {arch} holds {len(archs)} archs, expected one")
            return archs[0]
        return Arch.from_json(arch, where)
    return Arch.from_dict(arch, where)


def TrainNet(arch=None, weights=None, space="ofa", **kw):  # noqa: N802 - NNablaNAS's name
    """The static network of ``arch`` (default: the largest path of ``space``).

    ``weights``: a supernet weight file (the path's leading weight blocks are taken, which is
    exactly ``extract``) or a weight file of this static network. Other keyword arguments are the
    ``SupernetConfig`` fields; unknown ones must be null.
    """
    cfg_kw = {k: kw.pop(k) for k in CONFIG_KEYS if k in kw}
    check_ignored(kw, "TrainNet")
    if "neck_channels" in cfg_kw:
        cfg_kw["neck_channels"] = tuple(cfg_kw["neck_channels"])
    cfg = SupernetConfig.from_dict(cfg_kw)
    arch = space_from_spec(space).extreme(True) if arch is None else resolve_arch(arch)
    net = StaticDetector(cfg, arch)
    if weights:
        net.load_parameters(weights)
    return net
