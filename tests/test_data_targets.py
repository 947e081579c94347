import math

import numpy as np
import pytest

from nnabla_nas_detofa.detection.targets import (TargetBuilder, build_targets, draw_umich_gaussian, gaussian_kernel,
                                                 gaussian_radius)


def test_gaussian_radius_hand_worked():
    # 10 x 10 box, o = 0.7.  Reference (CenterNet) form, case 3: a = 2.8, b = -28, c = -30:
    # (b + sqrt(784 + 336)) / 2 = (-28 + 33.4664) / 2 = 2.7332 (cases 1, 2 give 19.07, 36.73)
    assert gaussian_radius(10, 10) == pytest.approx(2.7332, abs=1e-4)
    # exact: case 2 (box shrinks by 2r): (40 - sqrt(1600 - 480)) / 8 = 0.8167 (cases 1, 3: 0.925, 0.976)
    assert gaussian_radius(10, 10, mode="exact") == pytest.approx(0.8167, abs=1e-4)
    # 4 x 20: reference (-33.6 + sqrt(1128.96 + 268.8)) / 2 = 1.8934; exact case 2 (48 - sqrt(1920)) / 8 = 0.5227
    assert gaussian_radius(4, 20) == pytest.approx(1.8934, abs=1e-4)
    assert gaussian_radius(4, 20, mode="exact") == pytest.approx(0.5227, abs=1e-4)
    assert gaussian_radius(0, 5) == 0.0
    with pytest.raises(ValueError):
        gaussian_radius(3, 3, mode="nope")


@pytest.mark.parametrize("h, w", [(10, 10), (4, 20), (37, 11), (3, 3)])
def test_gaussian_radius_meaning(h, w):
    o = 0.7
    r = gaussian_radius(h, w, o, mode="exact")
    # the exact radius is where the worst of the three corner moves reaches IoU o exactly
    shifted = (h - r) * (w - r) / (2 * h * w - (h - r) * (w - r))
    shrunk = (h - 2 * r) * (w - 2 * r) / (h * w)
    grown = h * w / ((h + 2 * r) * (w + 2 * r))
    assert min(shifted, shrunk, grown) == pytest.approx(o, abs=1e-9)
    assert min(shifted, shrunk, grown) >= o - 1e-9
    # the reference value is always 4 o times the exact case-3 (growing) root
    r3 = (-2 * o * (h + w) + math.sqrt(4 * o * o * (h + w) ** 2 + 16 * o * (1 - o) * h * w)) / (8 * o)
    assert gaussian_radius(h, w, o) == pytest.approx(4 * o * r3)


def test_gaussian_kernel_and_drawing():
    g = gaussian_kernel(1)                              # d = 3, sigma = 0.5
    assert g.shape == (3, 3) and g[1, 1] == 1.0
    assert g[1, 0] == pytest.approx(math.exp(-2), rel=1e-6)
    assert g[0, 0] == pytest.approx(math.exp(-4), rel=1e-6)
    np.testing.assert_array_equal(g, g.T)
    heat = np.zeros((6, 8), np.float32)
    draw_umich_gaussian(heat, (0, 0), 2)                # clipped at the corner; sigma = 5/6
    assert heat[0, 0] == 1.0 and heat[0, 2] == pytest.approx(math.exp(-4 / (2 * (5 / 6) ** 2)), rel=1e-6)
    assert heat[0, 3] == 0 and heat[3, 0] == 0
    heat2 = heat.copy()
    draw_umich_gaussian(heat2, (1, 0), 0)               # radius 0: one pixel; combine by max
    assert heat2[0, 1] == 1.0 and heat2[0, 0] == 1.0 and heat2[1, 1] == heat[1, 1]
    draw_umich_gaussian(heat2, (7, 5), 3)               # opposite corner, clipped
    assert heat2[5, 7] == 1.0


def test_build_targets_layout_hand_worked():
    # 64 px input, stride 4 -> 16 x 16 map
    boxes = np.array([[8, 8, 24, 40],        # centre (16, 24) px -> (4, 6), integer: reg 0
                      [9, 9, 19, 19]],       # centre 14 px -> 3.5: integer 3, reg 0.5; size 2.5 units
                     np.float32)
    t = build_targets(boxes, np.array([1, 0]), num_classes=3, output_size=16)
    assert t.heatmap.shape == (3, 16, 16) and t.wh.shape == (2, 16, 16) and t.reg.shape == (2, 16, 16)
    assert t.mask.shape == (1, 16, 16) and all(a.dtype == np.float32 for a in t)
    assert t.heatmap[1, 6, 4] == 1.0 and t.heatmap[0, 3, 3] == 1.0
    assert t.heatmap[2].max() == 0
    np.testing.assert_allclose(t.wh[:, 6, 4], [4, 8])
    np.testing.assert_allclose(t.reg[:, 6, 4], [0, 0])
    np.testing.assert_allclose(t.wh[:, 3, 3], [2.5, 2.5])
    np.testing.assert_allclose(t.reg[:, 3, 3], [0.5, 0.5])
    assert t.mask.sum() == 2 and t.mask[0, 6, 4] == 1 and t.mask[0, 3, 3] == 1
    assert t.wh[:, t.mask[0] == 0].max() == 0
    # radius of the first box: h, w = 8, 4 units -> int(gaussian_radius(8, 4)) (reference form)
    r = int(gaussian_radius(8, 4))
    assert r == 1
    assert t.heatmap[1, 6, 4 + r] > 0 and t.heatmap[1, 6, 4 + r + 1] == 0


def test_ignored_dropped_and_shared_centres():
    boxes = np.array([[0, 0, 16, 16], [16, 16, 32, 32], [32, 32, 48, 48]], np.float32)
    t = build_targets(boxes, np.array([0, 0, 0]), 1, 16, ignore=np.array([False, True, False]))
    assert t.mask.sum() == 2 and t.heatmap[0, 6, 6] == 0          # difficult/crowd object left out
    t = build_targets(boxes, np.array([0, 0, 0]), 1, 16, max_objs=2)
    assert t.mask.sum() == 2 and t.mask[0, 10, 10] == 0            # the third (later) object dropped
    # two objects with the same integer centre: the smaller one's size wins, whatever the order
    big, small = [0, 0, 40, 40], [16, 16, 24, 24]
    for order in ([big, small], [small, big]):
        t = build_targets(np.array(order, np.float32), np.array([0, 1]), 2, 16)
        np.testing.assert_allclose(t.wh[:, 5, 5], [2, 2])
        assert t.mask.sum() == 1
    # no boxes at all
    t = build_targets(np.zeros((0, 4)), np.zeros(0), 2, 8)
    assert t.mask.sum() == 0 and t.heatmap.max() == 0
    with pytest.raises(ValueError, match="label 5 outside"):
        build_targets(boxes[:1], np.array([5]), 2, 16)


def test_target_builder_shapes_and_checks():
    tb = TargetBuilder(5, 128, max_objs=10)
    assert tb.shapes(2) == [(2, 5, 32, 32), (2, 2, 32, 32), (2, 2, 32, 32), (2, 1, 32, 32)]
    t = tb(np.array([[10, 10, 50, 30]]), np.array([4]))
    assert t.heatmap.shape == (5, 32, 32) and t.heatmap[4].max() == 1.0
    with pytest.raises(ValueError, match="multiple"):
        TargetBuilder(5, 130)
    assert TargetBuilder(5, 64, radius_mode="exact")(np.array([[0, 0, 40, 40]]), np.array([0])).heatmap[0].sum() < \
        TargetBuilder(5, 64)(np.array([[0, 0, 40, 40]]), np.array([0])).heatmap[0].sum()
