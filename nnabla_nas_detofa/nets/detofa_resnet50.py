"""The network module NNablaNAS looks up as ``contrib.detofa_resnet50`` (``SearchNet``/``TrainNet``).

Registration into ``nnabla_nas.contrib`` is done by ``nnabla_nas_detofa.registry``.
"""

from ..space import Arch, ArchError, load_archs, space_from_spec
from .static import StaticDetector
from .supernet import DetOFASupernet, network_config

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

def TrainNet(arch=None, weights=None, space="ofa", **kw):  # noqa: N802 - NNablaNAS's name
    """The static network of ``arch`` (default: the largest path of ``space``).

    ``weights``: a supernet weight file (the path's leading weight blocks are taken, which is
    exactly ``extract``) or a weight file of this static network. Other keyword arguments are the
    ``SupernetConfig`` fields; unknown ones must be null.
    """
    cfg = network_config(kw, "TrainNet")
    arch = space_from_spec(space).extreme(True) if arch is None else resolve_arch(arch)
    net = StaticDetector(cfg, arch)
    if weights:
        net.load_parameters(weights)
    return net
