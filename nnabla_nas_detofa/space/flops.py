"""Analytic FLOPs: multiply-accumulates of conv / deconv / linear layers, in MFLOPs.

The one definition used everywhere (buckets, reports, search constraints). The backbone part
follows once-for-all's ``ResNet50LatencyTable.count_flops_given_config`` (classifier excluded);
the detector adds the CenterNet up-convolutions and heads at the same input size.
"""
from functools import lru_cache

from .arch import N_STAGES, STAGE_FIRST_SLOT, STAGE_STRIDES, Arch
from .config import SupernetConfig, check_input_size

PARTS = ("backbone", "head", "detector")


def conv_macs(out_size: int, cin: int, cout: int, k: int, groups: int = 1) -> int:
    return cin * cout * k * k * out_size * out_size // groups


def _down(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def stem_macs(input_size: int, stem_mid: int, stem_out: int, residual: bool) -> int:
    """The stem: 3x3 s2 conv, the residual 3x3 unit (kept when ``residual``), 3x3 conv."""
    s = _down(input_size, 2)
    macs = conv_macs(s, 3, stem_mid, 3)
    if residual:
        macs += conv_macs(s, stem_mid, stem_mid, 3)
    return macs + conv_macs(s, stem_mid, stem_out, 3)


def stage_input_sizes(input_size: int) -> tuple:
    """Spatial size entering each stage (after the stem's s2 conv and max-pool): fixed by the
    input size, whatever the path."""
    s = _down(_down(input_size, 2), 2)
    out = []
    for stage in range(N_STAGES):
        out.append(s)
        s = _down(s, STAGE_STRIDES[stage])
    return tuple(out)


def unit_macs(size: int, cin: int, mid: int, cout: int, stride: int, first: bool) -> int:
    """One bottleneck unit entered at spatial ``size``: 1x1, 3x3 (stride), 1x1, and for the first
    unit of a stage the avg-pool + 1x1 conv shortcut."""
    out = _down(size, stride)
    macs = conv_macs(size, cin, mid, 1) + conv_macs(out, mid, mid, 3) + conv_macs(out, mid, cout, 1)
    if first:
        macs += conv_macs(out, cin, cout, 1)
    return macs


def backbone_macs(arch: Arch, cfg: SupernetConfig, input_size: int) -> int:
    ch = cfg.arch_channels(arch)
    macs = stem_macs(input_size, ch["stem_mid"], ch["stem_out"], arch.stem_residual)
    sizes = stage_input_sizes(input_size)
    cin = ch["stem_out"]
    for stage in range(N_STAGES):
        cout = ch["stage_out"][stage]
        s = sizes[stage]
        for pos in range(arch.stage_depth(stage)):
            mid = ch["mid"][STAGE_FIRST_SLOT[stage] + pos]
            stride = STAGE_STRIDES[stage] if pos == 0 else 1
            macs += unit_macs(s, cin, mid, cout, stride, pos == 0)
            s, cin = _down(s, stride), cout
    return macs


def head_macs(arch: Arch, cfg: SupernetConfig, input_size: int) -> int:
    """CenterNet: three 4x4 stride-2 deconvolutions (stride 32 -> 4), then three 3x3 + 1x1 heads."""
    return head_macs_from(cfg.arch_channels(arch)["stage_out"][-1], cfg, input_size)


def head_macs_from(cin: int, cfg: SupernetConfig, input_size: int) -> int:
    """The CenterNet neck and heads on ``cin`` backbone output channels."""
    s = input_size // 32
    macs = 0
    for cout in cfg.neck():
        macs += cin * cout * 16 * s * s  # every input pixel scatters a 4x4 kernel
        cin, s = cout, s * 2
    hc = cfg.head()
    for out_ch in (cfg.num_classes, 2, 2):
        macs += conv_macs(s, cin, hc, 3) + conv_macs(s, hc, out_ch, 1)
    return macs


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
