"""MACs counted on the NNabla graph of extracted paths equal the analytic FLOPs of ``space.flops``."""

import random

import nnabla as nn
import nnabla.functions as F
import pytest

from nnabla_nas_detofa.nets import DetOFASupernet, StaticDetector, count_graph_macs
from nnabla_nas_detofa.space import SupernetConfig, get_space, mflops
from nnabla_nas_detofa.space.flops import backbone_macs, head_macs

SMALL = SupernetConfig(num_classes=3, width_mult=0.125, divisor=1)


def archs(n, seed):
    space = get_space("ofa")
    rng = random.Random(seed)
    out = [space.extreme(False), space.extreme(True)]
    for i in range(n):
        a = space.sample(rng)
        out.append(a.replace(d=[(0, 2)[i % 2]] + list(a.d[1:])))
    return out


def test_count_graph_macs_by_hand():
    x = nn.Variable((2, 3, 8, 8))
    w1 = nn.Variable((5, 3, 3, 3))
    h = F.convolution(x, w1, None, pad=(1, 1), stride=(2, 2))            # 5*3*9 * 4*4 = 2160
    w2 = nn.Variable((5, 4, 4, 4))
    d = F.deconvolution(h, w2, None, pad=(1, 1), stride=(2, 2))          # 5*4*16 * 4*4 = 5120
    pooled = F.average_pooling(d, (8, 8))
    wa = nn.Variable((4, 7))
    a = F.affine(pooled, wa)                                             # 4*7 = 28
    b = F.relu(d) + d                                                    # not counted
    assert count_graph_macs(a) == 2160 + 5120 + 28
    assert count_graph_macs((a, b)) == 2160 + 5120 + 28                   # shared layers counted once
    assert count_graph_macs(h) == 2160
    seq = nn.Variable((2, 6, 3))
    assert count_graph_macs(F.affine(seq, nn.Variable((3, 4)), base_axis=2)) == 6 * 3 * 4


@pytest.mark.parametrize("size", [64, 128])
def test_static_graph_macs_equal_analytic_flops(size):
    sup = DetOFASupernet(num_classes=3, width_mult=0.125, divisor=1)
    for arch in archs(4, size):
        net = StaticDetector(SMALL, arch)
        x = nn.Variable((1, 3, size, size))
        det = count_graph_macs(net(x))
        bb = count_graph_macs(net.call_backbone(x))
        assert det == backbone_macs(arch, SMALL, size) + head_macs(arch, SMALL, size)
        assert bb == backbone_macs(arch, SMALL, size)
        assert abs(det - mflops(arch, SMALL, size, "detector") * 1e6) < 1e-3
        assert abs(bb - mflops(arch, SMALL, size, "backbone") * 1e6) < 1e-3
        assert abs(det - bb - mflops(arch, SMALL, size, "head") * 1e6) < 1e-3
        sup.set_arch(arch)
        assert count_graph_macs(sup(x)) == det  # slicing in the supernet graph changes nothing
        assert net.flops(size) == mflops(arch, SMALL, size)


def test_full_width_backbone_macs_equal_once_for_all_count():
    cfg = SupernetConfig()  # width 1, channels rounded to multiples of 8: the paper's network
    largest = get_space("ofa").extreme(True)
    for arch in archs(1, 7):
        net = StaticDetector(cfg, arch)
        macs = count_graph_macs(net.call_backbone(nn.Variable((1, 3, 224, 224))))
        assert abs(macs - mflops(arch, cfg, 224, "backbone") * 1e6) < 1e-3
        if arch == largest:  # stem 3-32-32-64, 4/4/6/4 units of widths 256..2048, expand 0.35
            assert 7000 < macs / 1e6 < 8000
