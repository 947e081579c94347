"""DetOFA supernet: every path of an OFA-ResNet50 space with a shared CenterNet neck and heads.

Weights are sized for the widest choice of every layer and all 18 unit slots; ``set_arch`` picks
the path that ``call`` builds (a path uses leading weight slices, see ``elastic``). NNablaNAS
builds a new graph after each ``set_arch``/``sample_arch`` (``Runner.update_graph``).
"""
from ..space import Arch, SupernetConfig, space_from_spec
from ..space.arch import N_SLOTS, N_STAGES, STAGE_SLOTS
from .detector import DetectorNet

CONFIG_KEYS = ("num_classes", "width_mult", "divisor", "neck_channels", "head_channels", "bn_decay", "bn_eps")


def check_ignored(kwargs: dict, where: str):
    """NNablaNAS passes every key of a network's JSON object; unknown keys are accepted only when null."""
    bad = sorted(k for k, v in kwargs.items() if v is not None)
    if bad:
        known = sorted(CONFIG_KEYS + ("space", "weights", "arch"))
        raise TypeError(f"{where}: unknown argument(s) {bad}; known: {known}")


def supernet_widths(cfg: SupernetConfig) -> dict:
    """Maximum width of every layer of the space (every choice of every decision fits in it)."""
    return {"stem_mid": max(cfg.stem_mid_list()), "stem_out": max(cfg.stem_out_list()), "stem_residual": True,
            "stage_out": [max(cfg.stage_out_list(s)) for s in range(N_STAGES)],
            "mid": [cfg.max_mid(s) for s in range(N_STAGES) for _ in range(STAGE_SLOTS[s])]}


class DetOFASupernet(DetectorNet):
    """NNablaNAS ``Model`` of the DetOFA supernet (``SearchNet`` of ``detofa_resnet50``).

    Args: the ``SupernetConfig`` fields; ``space``: name or spec of the space paths are checked
    against and sampled from (default 'ofa'); ``weights``: .h5 file of this supernet; ``arch``:
    initial path (default: the space's largest).
    """

    def __init__(self, num_classes=20, width_mult=1.0, divisor=8, neck_channels=(256, 128, 64), head_channels=64,
                 bn_decay=0.9, bn_eps=1e-5, space="ofa", weights=None, arch=None, **ignored_none):
        check_ignored(ignored_none, "DetOFASupernet")
        cfg = SupernetConfig.from_dict(dict(num_classes=num_classes, width_mult=width_mult, divisor=divisor,
                                            neck_channels=tuple(neck_channels), head_channels=head_channels,
                                            bn_decay=bn_decay, bn_eps=bn_eps))
        widths = supernet_widths(cfg)
        assert len(widths["mid"]) == N_SLOTS
        DetectorNet.__init__(self, cfg, widths)
        self.space = space_from_spec(space)
        self._arch = self.space.extreme(True)
        if arch is not None:
            self.set_arch(arch)
        if weights:
            self.load_parameters(weights)

    def set_arch(self, arch) -> Arch:
        """Make ``arch`` (Arch or dict) the path that ``call`` builds; it must be in the space."""
        self._arch = self.space.validate(arch)
        return self._arch

    def sample_arch(self, rng=None, mode: str = "decision") -> Arch:
        """Set and return a random path of the space (``space.sample``: uniform per decision, or per path)."""
        return self.set_arch(self.space.sample(rng, mode=mode))

    def extra_repr(self):
        return f"config={self.config}, space={self.space.name!r}"
