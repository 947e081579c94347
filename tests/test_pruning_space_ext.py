"""The space/ extensions pruning relies on: vectorised FLOPs, arch arrays, path enumeration."""
import random

import numpy as np
import pytest

from nnabla_nas_detofa.space import PARTS, Arch, SupernetConfig, get_space, make_space, mflops
from nnabla_nas_detofa.space.batch import ArchArrays, FlopsTable

SETTINGS = [(SupernetConfig(), 384), (SupernetConfig(num_classes=5, width_mult=0.25, divisor=1), 96),
            (SupernetConfig(width_mult=0.125, divisor=1), 64)]


@pytest.mark.parametrize("cfg,size", SETTINGS)
def test_vectorised_flops_equal_scalar_flops_bit_for_bit(cfg, size):
    rng = random.Random(size)
    archs = [get_space("ofa").sample(rng, mode="decision") for _ in range(300)]
    archs += [get_space("compofa").sample(rng) for _ in range(50)]
    archs += [get_space("ofa").extreme(True), get_space("ofa").extreme(False)]
    table, arr = FlopsTable(cfg, size), ArchArrays.from_archs(archs)
    for part in PARTS:
        got = table.mflops(arr, part)
        want = np.array([mflops(a, cfg, size, part) for a in archs])
        assert np.array_equal(got, want), part


def test_arch_arrays_roundtrip_and_range_checks():
    rng = random.Random(0)
    archs = [get_space("ofa").sample(rng) for _ in range(50)]
    arr = ArchArrays.from_archs(archs)
    back = arr.to_archs()
    assert back == archs and [a.to_dict() for a in back] == [a.to_dict() for a in archs]
    assert arr.arch(7) == archs[7] and hash(arr.arch(7)) == hash(archs[7])
    assert np.array_equal(arr.active(), [[a.slot_active(k) for k in range(18)] for a in archs])
    with pytest.raises(ValueError, match="out of range"):
        ArchArrays(np.ones((1, 5)), np.zeros((1, 6)), np.zeros((1, 18)))   # stem depth 1
    with pytest.raises(ValueError, match="out of range"):
        ArchArrays(np.zeros((1, 5)), np.full((1, 6), 3), np.zeros((1, 18)))


def test_stage_bounds_bound_every_expand_choice():
    cfg, size = SETTINGS[2]
    table = FlopsTable(cfg, size)
    emin, emax = np.zeros(18, np.int64), np.full(18, 2)
    b = table.stage_bounds(emin, emax)
    rng = random.Random(1)
    for _ in range(100):
        a = get_space("ofa").sample(rng)
        arr = ArchArrays.from_archs([a])
        lo = table.stem[int(a.d[0] == 2), a.w[0], a.w[1]] + table.head[a.w[5]]
        lo_hi = np.array([lo, lo])
        for s in range(4):
            cin = a.w[1] if s == 0 else a.w[1 + s]
            lo_hi += b[s][cin, a.d[1 + s], a.w[2 + s]]
        assert lo_hi[0] <= table.macs(arr)[0] <= lo_hi[1]
        mn = Arch(a.d, [0.2] * 18, a.w)
        mx = Arch(a.d, [0.35] * 18, a.w)
        assert lo_hi[0] == table.macs(ArchArrays.from_archs([mn]))[0]
        assert lo_hi[1] == table.macs(ArchArrays.from_archs([mx]))[0]


@pytest.mark.parametrize("coupled", [False, True])
def test_iter_paths_lists_every_distinct_network_once(coupled):
    sp = make_space(depths=(0, 1), widths=(0.8, 1.0), expands=(0.2, 0.35), stem_depths=(0,), coupled=coupled)
    sp = sp.restrict({("e", k): [0.2] for k in range(18) if k not in (2, 3, 9, 14)})
    paths = list(sp.iter_paths())
    assert len(paths) == sp.size() == len(set(paths))
    assert all(sp.contains(a) for a in paths)
    # every network sampled uniformly is among them
    rng = random.Random(2)
    assert {sp.sample(rng, mode="path") for _ in range(300)} <= set(paths)
    with pytest.raises(Exception, match="more than limit"):
        next(get_space("ofa").iter_paths())
