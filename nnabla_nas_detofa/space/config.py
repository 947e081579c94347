"""Static settings of a supernet (widths, classes, head) and the channel counts they imply.

One place computes every channel count, so the elastic network, the extracted static network and
the analytic FLOPs can never disagree.
"""
import math
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from typing import Dict, Tuple

from .arch import EXPAND_CHOICES, N_STAGES, WIDTH_CHOICES, Arch, SLOT_STAGE

STAGE_WIDTHS = (256, 512, 1024, 2048)
STEM_WIDTH = 64
MAX_CHANNELS = 100_000   # num_classes, divisor, head and neck channels: at most this


def make_divisible(v: float, divisor: int = 8, min_value: int = None) -> int:
    """Round to the nearest multiple of ``divisor`` (never below it), bumped up when rounding lost >10 %."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConfigError(ValueError):
    pass


STEM_ACTIVATIONS = ("relu", "relu6")   # the first is the default


@dataclass(frozen=True)
class SupernetConfig:
    """``width_mult`` scales every channel count (1.0 = the paper's network); ``divisor`` is the
    channel rounding (8 as in once-for-all; 1 keeps width choices distinct at tiny widths).
    ``stem_activation``: the activation of the three stem convs, ``relu`` (once-for-all's
    OFA-ResNet50) or ``relu6`` (NNablaNAS's ``ofa_resnet50``, whose stem layers keep their
    ``DynamicConvLayer`` default); the bottlenecks always use ReLU."""

    num_classes: int = 20
    width_mult: float = 1.0
    divisor: int = 8
    neck_channels: Tuple[int, int, int] = (256, 256, 256)   # CenterNet msra_resnet / NNabla's CenterNet
    head_channels: int = 64
    bn_decay: float = 0.9
    bn_eps: float = 1e-5
    stem_activation: str = "relu"
    stem_channels: Tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        def number(name, lo, hi, lo_open=True):
            v = getattr(self, name)
            ok = not isinstance(v, bool) and isinstance(v, (int, float)) and v <= hi and \
                (v > lo if lo_open else v >= lo) and math.isfinite(v)   # range first: a huge int has no float
            if not ok:
                raise ConfigError(f"{name}={v!r}: expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
            object.__setattr__(self, name, float(v))

        def integer(name, lo, hi):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"{name}={v!r}: expected an integer in {lo}..{hi}")

        integer("num_classes", 1, MAX_CHANNELS)
        number("width_mult", 0, 4)
        integer("divisor", 1, MAX_CHANNELS)
        integer("head_channels", 1, MAX_CHANNELS)
        number("bn_decay", 0, 1)
        number("bn_eps", 0, 1)
        if self.stem_activation not in STEM_ACTIVATIONS:
            raise ConfigError(f"stem_activation={self.stem_activation!r}: expected one of {list(STEM_ACTIVATIONS)}")
        nc = self.neck_channels
        if not (isinstance(nc, (list, tuple)) and len(nc) == 3 and
                all(not isinstance(c, bool) and isinstance(c, int) and 1 <= c <= MAX_CHANNELS for c in nc)):
            raise ConfigError(f"neck_channels={nc!r}: expected 3 integers in 1..{MAX_CHANNELS}")
        object.__setattr__(self, "neck_channels", tuple(int(c) for c in nc))
        object.__setattr__(self, "stem_channels", tuple(self._div(STEM_WIDTH * w) for w in WIDTH_CHOICES))

    @classmethod
    def from_dict(cls, obj: Dict, where: str = "network") -> "SupernetConfig":
        if not isinstance(obj, dict):
            raise ConfigError(f"{where}: expected an object of supernet settings {list(CONFIG_KEYS)}")
        unknown = sorted(set(obj) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
        try:
            return cls(**obj)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    @classmethod
    def split_kwargs(cls, kwargs: Dict, where: str = "network") -> Tuple["SupernetConfig", Dict]:
        """(config from the ``CONFIG_KEYS`` among ``kwargs``, the remaining keyword arguments)."""
        rest = dict(kwargs)
        return cls.from_dict({k: rest.pop(k) for k in CONFIG_KEYS if k in rest}, where), rest

    def to_dict(self) -> Dict:
        """The constructor keys; ``stem_activation`` only when it is not the default (so the
        settings recorded by runs made before it existed still read as the same network)."""
        d = asdict(self)
        d.pop("stem_channels", None)
        d["neck_channels"] = list(self.neck_channels)
        if d["stem_activation"] == STEM_ACTIVATIONS[0]:
            del d["stem_activation"]
        return d

    # --- channel counts ----------------------------------------------------------------------
    def _div(self, v: float) -> int:
        return make_divisible(v * self.width_mult, self.divisor)

    def stem_out_list(self):
        """Stem conv 3 output channels per width choice (64 x W at full width -> 40/48/64)."""
        return self.stem_channels

    @lru_cache(maxsize=None)
    def stem_mid_list(self):
        """Stem conv 1 / residual unit channels per width choice (24/24/32 at full width)."""
        return tuple(make_divisible(c // 2, self.divisor) for c in self.stem_channels)

    @lru_cache(maxsize=None)
    def stage_out_list(self, stage: int):
        return tuple(self._div(STAGE_WIDTHS[stage] * w) for w in WIDTH_CHOICES)

    @lru_cache(maxsize=None)
    def mid_channels(self, out_channels: int, expand: float) -> int:
        return make_divisible(round(out_channels * expand), self.divisor)

    def max_mid(self, stage: int) -> int:
        return self.mid_channels(max(self.stage_out_list(stage)), max(EXPAND_CHOICES))

    @lru_cache(maxsize=None)
    def neck(self):
        return tuple(max(1, int(round(c * self.width_mult))) for c in self.neck_channels)

    def head(self) -> int:
        return max(1, int(round(self.head_channels * self.width_mult)))

    def arch_channels(self, arch: Arch) -> Dict:
        """Active channel counts of a path: stem, per-stage out, per-slot mid (None if dropped)."""
        stage_out = [self.stage_out_list(s)[arch.w[2 + s]] for s in range(N_STAGES)]
        mids = [self.mid_channels(stage_out[SLOT_STAGE[i]], arch.e[i]) if arch.slot_active(i) else None
                for i in range(len(arch.e))]
        return {"stem_mid": self.stem_mid_list()[arch.w[0]], "stem_out": self.stem_out_list()[arch.w[1]],
                "stage_out": stage_out, "mid": mids}


# constructor keys of a SupernetConfig, in field order (the one list network arguments are checked against)
CONFIG_KEYS = tuple(f.name for f in fields(SupernetConfig) if f.init)


MAX_INPUT_SIZE = 8192


def check_input_size(size, where="input_size") -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 32 or size > MAX_INPUT_SIZE:
        raise ConfigError(f"{where}={size!r}: must be a positive multiple of 32 (the backbone stride), at most "
                          f"{MAX_INPUT_SIZE}")
    return size
