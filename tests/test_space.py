import json
import random

import pytest

from nnabla_nas_detofa.space import (Arch, ArchError, Buckets, SupernetConfig, get_space, make_divisible,
                                     make_space, mflops, space_buckets, space_from_spec, tokenize, vocabulary)
from nnabla_nas_detofa.space.spaces import SpaceError

FULL = SupernetConfig()


def arch(d=(2, 2, 2, 2, 2), e=0.35, w=(2,) * 6):
    return Arch(list(d), [e] * 18 if isinstance(e, float) else list(e), list(w))


def test_make_divisible_matches_once_for_all_table():
    # DETOFA.md §2: the full-width channel counts
    assert FULL.stem_out_list() == (40, 48, 64)
    assert FULL.stem_mid_list() == (24, 24, 32)
    assert [FULL.stage_out_list(s) for s in range(4)] == [
        (168, 208, 256), (336, 408, 512), (664, 816, 1024), (1328, 1640, 2048)]
    assert make_divisible(3, 8) == 8          # never below the divisor
    assert make_divisible(0.9 * 16 + 0.1, 8) == 16
    assert FULL.mid_channels(256, 0.35) == 88  # round(89.6)=90 -> 88


def test_arch_validation_names_the_key():
    with pytest.raises(ArchError, match=r"\['d'\]\[0\]=1"):
        Arch([1, 0, 0, 0, 0], [0.2] * 18, [0] * 6)
    with pytest.raises(ArchError, match=r"\['e'\]\[3\]=0.3"):
        Arch([0] * 5, [0.2] * 3 + [0.3] + [0.2] * 14, [0] * 6)
    with pytest.raises(ArchError, match=r"\['w'\]: expected 6 values"):
        Arch([0] * 5, [0.2] * 18, [0] * 5)
    with pytest.raises(ArchError, match=r"\['w'\]\[2\]=3"):
        Arch([0] * 5, [0.2] * 18, [0, 0, 3, 0, 0, 0])
    with pytest.raises(ArchError, match="unknown key"):
        Arch.from_dict({"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6, "k": 1})
    with pytest.raises(ArchError, match="missing key"):
        Arch.from_dict({"d": [0] * 5, "e": [0.2] * 18})


def test_arch_hash_ignores_dropped_slots_and_roundtrips_json():
    a = arch(d=(0, 0, 0, 0, 0), e=0.2)
    e = [0.2] * 18
    e[3] = 0.35  # slot 3 = stage 1 unit 4, dropped at d=0
    b = Arch(a.d, e, a.w)
    assert a == b and hash(a) == hash(b)
    e[1] = 0.35  # active slot
    assert Arch(a.d, e, a.w) != a
    assert Arch.from_json(b.to_json()) == b
    assert json.loads(b.to_json())["e"][3] == 0.35


def test_space_sizes_are_exact():
    # stage with base depth b: sum_d 3^(b+d) expand combos, x3 widths; stem: 2 depths x 3 x 3 widths
    st = lambda b: 3 * sum(3 ** (b + d) for d in range(3))
    assert get_space("ofa").size() == 18 * st(2) ** 3 * st(4)
    # CompOFA*: one width per depth
    cs = lambda b: sum(3 ** (b + d) for d in range(3))
    assert get_space("compofa").size() == 18 * cs(2) ** 3 * cs(4)
    # PS stage 1: W=1.0, E=0.35 only: stem 2 depths x 1 x 1, each stage 3 depths
    assert get_space("ps1").size() == 2 * 3 ** 4
    assert get_space("ps5").choices == get_space("ofa").choices


def test_uniform_path_sampling_matches_space_counts():
    # tiny space where each network can be counted: E choices {0.2, 0.25} on a 2-depth space
    sp = make_space(depths=(0, 1), widths=(1.0,), expands=(0.2, 0.25), stem_depths=(0,))
    rng = random.Random(0)
    n = 20000
    counts = {}
    for _ in range(n):
        a = sp.sample(rng, mode="path")
        assert sp.contains(a)
        counts[a.d[3]] = counts.get(a.d[3], 0) + 1
    # stage 3 (base 4): d=0 has 2^4 paths, d=1 has 2^5 -> ratio 1:2 under uniform-path sampling
    assert abs(counts[1] / n - 2 / 3) < 0.02
    counts = {}
    for _ in range(n):
        a = sp.sample(rng, mode="decision")
        counts[a.d[3]] = counts.get(a.d[3], 0) + 1
    assert abs(counts[1] / n - 1 / 2) < 0.02


def test_compofa_couples_depth_and_width():
    sp = get_space("compofa")
    rng = random.Random(1)
    for _ in range(200):
        a = sp.sample(rng)
        assert all(a.d[s + 1] == a.w[s + 2] for s in range(4))
    assert not sp.contains(arch(d=(2, 0, 2, 2, 2)))


def test_ps_stages_grow():
    sizes = [get_space(f"ps{i}").size() for i in range(1, 6)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 5
    assert get_space("ps1").contains(arch(d=(0, 1, 2, 0, 1), e=0.35))
    assert not get_space("ps1").contains(arch(e=0.25))


def test_space_errors():
    with pytest.raises(SpaceError, match="unknown search space 'foo'"):
        get_space("foo")
    with pytest.raises(SpaceError, match="width 0.5"):
        space_from_spec({"width": [0.5]})


def _count_backbone_by_hand(a, cfg, size):
    """Independent count: walk the layer list of once-for-all's ResNet50 config."""
    ch = cfg.arch_channels(a)
    layers = []  # (in, out, k, stride)
    layers.append((3, ch["stem_mid"], 3, 2))
    if a.d[0] == 2:
        layers.append((ch["stem_mid"], ch["stem_mid"], 3, 1))
    layers.append((ch["stem_mid"], ch["stem_out"], 3, 1))
    total, s = 0, size
    for cin, cout, k, st in layers:
        s = -(-s // st)
        total += cin * cout * k * k * s * s
    s = -(-s // 2)
    cin = ch["stem_out"]
    slot = 0
    for stage, base in enumerate((2, 2, 4, 2)):
        cout = ch["stage_out"][stage]
        for u in range(base + 2):
            if u < base + a.d[stage + 1]:
                m = ch["mid"][slot]
                st = 2 if (u == 0 and stage > 0) else 1
                so = -(-s // st)
                total += s * s * cin * m + so * so * (9 * m * m + m * cout)
                if u == 0:
                    total += so * so * cin * cout
                s, cin = so, cout
            slot += 1
    return total / 1e6


def test_flops_backbone_matches_independent_count():
    rng = random.Random(3)
    sp = get_space("ofa")
    for _ in range(50):
        a = sp.sample(rng)
        for size in (224, 384):
            assert mflops(a, FULL, size, "backbone") == pytest.approx(_count_backbone_by_hand(a, FULL, size), rel=1e-12)


def test_flops_standard_resnet50_like_path():
    # ResNet50-D-like path (depths 3/4/6/3, E=0.25, W=1.0, stem kept) lands near the known ~4.3 GMACs at 224
    a = Arch([2, 1, 2, 2, 1], [0.25] * 18, [2] * 6)
    v = mflops(a, FULL, 224, "backbone")
    assert 4000 < v < 4800


def test_flops_monotone_and_detector_adds_head():
    sp = get_space("ofa")
    lo, hi = sp.extreme(False), sp.extreme(True)
    assert mflops(lo, FULL, 384) < mflops(hi, FULL, 384)
    a = sp.sample(random.Random(0))
    assert mflops(a, FULL, 384) == pytest.approx(mflops(a, FULL, 384, "backbone") + mflops(a, FULL, 384, "head"))
    with pytest.raises(ValueError, match="multiple of 32"):
        mflops(a, FULL, 100)


def test_buckets():
    b = Buckets(0.0, 10.0, 5)
    assert [b.index(x) for x in (-1, 0, 1.99, 2.0, 9.99, 10, 11)] == [0, 0, 0, 1, 4, 4, 4]
    assert list(b.indices([0, 5, 10])) == [0, 2, 4]
    sb = space_buckets(get_space("ofa"), FULL, 384)
    assert sb.lo == mflops(get_space("ofa").extreme(False), FULL, 384)


def test_tokens():
    a = Arch([0, 0, 2, 0, 0], [0.25, 0.35] + [0.2] * 16, [0, 1, 2, 1, 1, 0])
    t = tokenize(a)
    assert len(t) == 19
    assert t[0] == "STEM_SC_W0.65_W0.8"
    assert t[1:5] == ["W1.0_E0.25", "W1.0_E0.35", "SC", "SC"]   # DETOFA.md §3 example
    assert t[5:9] == ["W0.8_E0.2"] * 4
    voc = vocabulary(get_space("ofa"))
    assert all(tok in voc for tok in t)
    assert len(voc) == 2 + 18 + 9
    assert len(vocabulary(get_space("ps1"))) == 2 + 2 + 1
