"""DetOFA supernet: every path of an OFA-ResNet50 space with a shared CenterNet neck and heads.

Weights are sized for the widest choice of every layer and all 18 unit slots; ``set_arch`` picks
the path that ``call`` builds (a path uses leading weight slices, see ``elastic``). NNablaNAS
builds a new graph after each ``set_arch``/``sample_arch`` (``Runner.update_graph``).
"""
from ..space import Arch, ConfigError, SupernetConfig, space_from_spec
from ..space.arch import N_SLOTS, N_STAGES, STAGE_SLOTS
from ..space.config import CONFIG_KEYS
from .detector import DetectorNet

NETWORK_KEYS = ("space", "weights", "arch", "pretrained")


def network_config(kwargs: dict, where: str) -> SupernetConfig:
    """The SupernetConfig of a network's keyword arguments (the ``CONFIG_KEYS``; defaults are
    SupernetConfig's). NNablaNAS passes every key of a network's JSON object: any other key is
    accepted only when null."""
    cfg, rest = SupernetConfig.split_kwargs(kwargs, where)
    bad = sorted(k for k, v in rest.items() if v is not None)
    if bad:
        raise TypeError(f"{where}: unknown argument(s) {bad}; known: {sorted(CONFIG_KEYS + NETWORK_KEYS)}")
    return cfg


def check_weight_sources(weights, pretrained, where: str) -> None:
    """``weights`` (a trained DetOFA network, every parameter) and ``pretrained`` (an ImageNet
    supernet, backbone only) are two different starts: refuse both at once."""
    if weights and pretrained:
        raise ConfigError(f"{where}: 'weights' ({weights}) and 'pretrained' ({pretrained}) both given: 'weights' "
                          f"loads a trained DetOFA network, 'pretrained' starts a new one from an ImageNet supernet; "
                          f"give one of them")


def load_pretrained(net: DetectorNet, source) -> dict:
    """Import the backbone of an ImageNet OFA-ResNet50 supernet into ``net`` (``transfer.import_supernet``:
    a once-for-all torch checkpoint, a NNablaNAS ``.h5`` or an ``import-weights`` ``.h5``); a static
    network takes the leading block of every tensor, as ``extract`` does. The input normalisation,
    neck and heads keep their initialisation. Logs and returns the report (also ``net.pretrained_report``)."""
    import nnabla as nn
    from hydra import utils as hydra_utils  # NNablaNAS runs under hydra, which may change the cwd
    from ..transfer import format_report, import_supernet
    from .static import leading_block
    arrays, report = import_supernet(hydra_utils.to_absolute_path(str(source)), net.config)
    params = net.get_parameters()
    used = 0
    for key, a in arrays.items():
        p = params.get(key)
        if p is None:
            continue  # a static path without this unit
        p.d = a if tuple(a.shape) == tuple(p.shape) else leading_block(a, p.shape, f"{source}: '{key}'")
        used += 1
    for bn in net.elastic_bns():
        bn.forget_tracked()
    report["network"] = type(net).__name__
    report["network_tensors"] = used
    text = format_report(report)
    if not net.is_supernet:
        text += f"\n  {used} of them as the leading blocks of this path's parameters (arch {net.arch.to_json()})"
    nn.logger.info(text)
    net.pretrained_report = report
    return report


def supernet_widths(cfg: SupernetConfig) -> dict:
    """Maximum width of every layer of the space (every choice of every decision fits in it)."""
    return {"stem_mid": max(cfg.stem_mid_list()), "stem_out": max(cfg.stem_out_list()), "stem_residual": True,
            "stage_out": [max(cfg.stage_out_list(s)) for s in range(N_STAGES)],
            "mid": [cfg.max_mid(s) for s in range(N_STAGES) for _ in range(STAGE_SLOTS[s])]}


class DetOFASupernet(DetectorNet):
    """NNablaNAS ``Model`` of the DetOFA supernet (``SearchNet`` of ``detofa_resnet50``).

    Args: the ``SupernetConfig`` fields; ``space``: name or spec of the space paths are checked
    against and sampled from (default 'ofa'); ``weights``: .h5 file of this supernet (every
    parameter); ``pretrained``: an ImageNet OFA-ResNet50 supernet whose backbone is imported (see
    ``load_pretrained``; neck and heads keep their initialisation), not together with ``weights``;
    ``arch``: initial path (default: the space's largest).
    """

    def __init__(self, space="ofa", weights=None, arch=None, pretrained=None, **config):
        cfg = network_config(config, "DetOFASupernet")
        check_weight_sources(weights, pretrained, "DetOFASupernet")
        widths = supernet_widths(cfg)
        assert len(widths["mid"]) == N_SLOTS
        DetectorNet.__init__(self, cfg, widths)
        self.space = space_from_spec(space)
        self._arch = self.space.extreme(True)
        if arch is not None:
            self.set_arch(arch)
        self.pretrained_report = None
        if weights:
            self.load_parameters(weights)
        if pretrained:
            load_pretrained(self, pretrained)

    is_supernet = True

    def set_arch(self, arch) -> Arch:
        """Make ``arch`` (Arch or dict) the path that ``call`` builds; it must be in the space."""
        self._arch = self.space.validate(arch)
        return self._arch

    def sample_arch(self, rng=None, mode: str = "decision") -> Arch:
        """Set and return a random path of the space (``space.sample``: uniform per decision, or per path)."""
        return self.set_arch(self.space.sample(rng, mode=mode))

    def extra_repr(self):
        return f"config={self.config}, space={self.space.name!r}"
