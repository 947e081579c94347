"""The layer decomposition of a path (space/layers.py), the parameter count (space/params.py) and
the per-choice cost tables of the search (search/costs.py)."""
import random

import numpy as np
import pytest

from nnabla_nas_detofa.search import AdditiveCost, MissingLayer, flops_constraint, params_constraint
from nnabla_nas_detofa.space import (SupernetConfig, get_space, make_space, mflops, param_count, path_layers,
                                     space_layers)
from nnabla_nas_detofa.space.flops import backbone_macs, head_macs
from nnabla_nas_detofa.space.layers import layer_macs, layer_params

TINY = SupernetConfig(num_classes=3, width_mult=0.125, divisor=1)
CONFIGS = [SupernetConfig(), TINY, SupernetConfig(num_classes=80, width_mult=0.25)]


def archs(space, n, seed):
    rng = random.Random(seed)
    out = [space.extreme(False), space.extreme(True)]
    for i in range(n):
        a = space.sample(rng)
        if 0 in space.choices[("d", 0)] and 2 in space.choices[("d", 0)]:
            a = a.replace(d=[(0, 2)[i % 2]] + list(a.d[1:]))  # both stem depths
        out.append(a)
    return out


def test_layers_sum_to_the_flops_definition():
    for cfg in CONFIGS:
        for a in archs(get_space("ofa"), 40, 1):
            lay = path_layers(a, cfg, 128)
            assert sum(layer_macs(x) for x in lay) == backbone_macs(a, cfg, 128) + head_macs(a, cfg, 128)
            assert sum(layer_macs(x) for x in path_layers(a, cfg, 96, "backbone")) == backbone_macs(a, cfg, 96)
            n_units = sum(a.stage_depth(s) for s in range(4))
            assert len(lay) == 2 + a.stem_residual + n_units + 3 + 1
            assert [x.kind for x in lay[:2]] == ["stem_conv1", "stem_res" if a.stem_residual else "stem_conv3"]


def test_first_units_carry_stride_and_conv_shortcut():
    a = get_space("ofa").extreme(True)
    units = [x for x in path_layers(a, SupernetConfig(), 384) if x.kind == "bottleneck"]
    firsts = [u for u in units if u.shortcut]
    assert [u.stride for u in firsts] == [1, 2, 2, 2]
    assert [u.size for u in firsts] == [96, 96, 48, 24]
    assert [u.out_size for u in firsts] == [96, 48, 24, 12]
    assert [u.cout for u in firsts] == [256, 512, 1024, 2048]
    assert firsts[0].cin == 64 and firsts[1].cin == 256
    assert all(u.stride == 1 and u.cin == u.cout for u in units if not u.shortcut)
    assert units[0].key() == "bottleneck-input:96x96x64-output:96x96x256-mid:88-stride:1-shortcut:conv"


@pytest.mark.parametrize("name", ["ofa", "compofa", "ps1", "ps4"])
def test_space_layers_are_distinct_and_cover_every_path(name):
    space = get_space(name)
    lay = space_layers(space, TINY, 64)
    assert len(set(lay)) == len(lay)
    keys = {x.key() for x in lay}
    assert len(keys) == len(lay)  # a key names one layer configuration
    used = set()
    for a in archs(space, 150, 2):
        for x in path_layers(a, TINY, 64):
            assert x in lay
            used.add(x)
    if name in ("ps1", "compofa"):
        assert used == set(lay)  # nothing measured that no path uses (small spaces: all reached)


def test_space_layers_count_at_paper_scale():
    cfg = SupernetConfig()
    # per stage: first units 3 (input widths) x 3 (widths) x 3 (expand), other units 3 x 3
    ofa = space_layers(get_space("ofa"), cfg, 384)
    assert sum(x.kind == "bottleneck" for x in ofa) == 4 * (27 + 9)
    assert sum(x.kind == "deconv" for x in ofa) == 3 + 1 + 1
    comp = space_layers(get_space("compofa"), cfg, 384)
    assert {x for x in comp} <= set(ofa)
    assert len(space_layers(get_space("ps1"), cfg, 384)) < 40


def test_param_count_equals_the_static_network():
    from nnabla_nas_detofa.nets import StaticDetector
    for a in archs(get_space("ofa"), 10, 3) + archs(get_space("compofa"), 2, 4):
        net = StaticDetector(TINY, a)
        params = net.get_parameters(grad_only=True)
        n = sum(int(np.prod(v.shape)) for v in params.values())
        assert param_count(a, TINY) == n
        bb = sum(int(np.prod(v.shape)) for k, v in params.items() if k.split("/")[0] in ("stem", "stages"))
        assert param_count(a, TINY, "backbone") == bb
        assert param_count(a, TINY, "head") == n - bb
        # what is left out: BN running statistics (2 per BN channel) and the input normalisation (3 + 3)
        everything = sum(int(np.prod(v.shape)) for v in net.get_parameters(grad_only=False).values())
        bn_channels = sum(int(np.prod(v.shape)) for k, v in params.items() if k.endswith("/bn/gamma"))
        assert everything == n + 2 * bn_channels + 6


def test_param_count_by_hand_and_paper_scale():
    cfg = SupernetConfig()
    small = get_space("ofa").extreme(False)
    stem = 3 * 24 * 9 + 2 * 24 + 24 * 40 * 9 + 2 * 40          # stem conv1 + conv3, BN scale/shift
    lay = path_layers(small, cfg, 64, "backbone")
    assert sum(layer_params(x) for x in lay[:2]) == stem
    u = lay[2]  # stage 1 unit 1: 40 -> mid make_divisible(round(168 x 0.2) = 34) = 32 -> 168, conv shortcut
    assert (u.cin, u.mid, u.cout, u.shortcut) == (40, 32, 168, True)
    m = 32
    assert layer_params(u) == 40 * m + 2 * m + m * m * 9 + 2 * m + m * 168 + 2 * 168 + 40 * 168 + 2 * 168
    assert param_count(small, cfg, "backbone") == sum(layer_params(x) for x in lay)
    big = get_space("ofa").extreme(True)
    assert 40e6 < param_count(big, cfg, "backbone") < 50e6   # OFA-ResNet50 max: D2 W1.0 E0.35
    assert param_count(big, cfg) > param_count(small, cfg)


def test_additive_cost_equals_the_sums_exactly():
    for cfg in (SupernetConfig(), TINY):
        fl = flops_constraint(1e9, cfg, 128)
        pa = params_constraint(1e9, cfg)
        for name in ("ofa", "compofa"):
            for a in archs(get_space(name), 60, 5):
                assert fl.value(a) == mflops(a, cfg, 128)          # bit for bit: same integer, same division
                assert pa.value(a) == param_count(a, cfg) / 1e6
    times = {x: random.Random(hash(x.key()) % 1000).random() for x in space_layers(get_space("ofa"), TINY, 64)}
    cost = AdditiveCost(TINY, 64, lambda x: times[x])
    for a in archs(get_space("ofa"), 30, 6):
        assert cost(a) == pytest.approx(sum(times[x] for x in path_layers(a, TINY, 64)), rel=1e-12)
    bb = AdditiveCost(TINY, 64, layer_macs, part="backbone")
    assert bb(a) == backbone_macs(a, TINY, 64)


def test_additive_cost_names_a_missing_layer_only_for_paths_that_use_it():
    narrow = make_space(expands=(0.35,))
    known = {x for x in space_layers(narrow, TINY, 64)}
    cost = AdditiveCost(TINY, 64, lambda x: {k: 1.0 for k in known}[x])
    assert cost(narrow.extreme(True)) == len(path_layers(narrow.extreme(True), TINY, 64))
    other = get_space("ofa").extreme(False)   # expand 0.2: layers the table lacks
    with pytest.raises(MissingLayer, match="bottleneck-input:"):
        cost(other)
