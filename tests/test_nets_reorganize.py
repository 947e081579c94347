"""Channel re-organisation keeps the largest path's function and puts important channels first."""
import numpy as np

from nnabla_nas_detofa.nets.reorganize import _order, reorganize_middle, reorganize_width
from nnabla_nas_detofa.nets.supernet import DetOFASupernet
from nnabla_nas_detofa.space import get_space
from test_nets_supernet import forward, images, randomize

CFG = dict(num_classes=3, width_mult=0.125, divisor=1)


def make():
    net = DetOFASupernet(**CFG)
    randomize(net, 3)
    net.set_arch(get_space("ofa").extreme(True))
    return net


def test_order_sorts_inside_bands():
    imp = np.array([1.0, 5.0, 3.0, 9.0, 2.0, 7.0])
    assert list(_order(imp, None)) == [3, 5, 1, 2, 4, 0]
    assert list(_order(imp, [2, 4])) == [1, 0, 3, 2, 5, 4]


def test_middle_reorganisation_keeps_the_largest_path_and_sorts():
    net = make()
    x = images(2, seed=4)
    before = forward(net, x)
    assert reorganize_middle(net) == 18
    after = forward(net, x)
    for a, b in zip(before, after):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()   # float summation order only
    w3 = np.abs(net.get_parameters()["stages/2/1/conv3/conv/W"].d).sum(axis=(0, 2, 3))
    assert np.all(np.diff(w3) <= 1e-6)   # importance of conv2's outputs now decreasing
    # and a narrower path changed (it now uses the most important channels)
    arch = get_space("ofa").extreme(True).replace(e=[0.2] * 18)
    net2 = make()
    net2.set_arch(arch)
    net.set_arch(arch)
    assert max(np.abs(a - b).max() for a, b in zip(forward(net, x), forward(net2, x))) > 1e-3


def test_width_reorganisation_keeps_the_largest_path_and_respects_bands():
    net = make()
    x = images(2, seed=5)
    before = forward(net, x)
    key = "stages/1/0/conv3/conv/W"
    old = net.get_parameters()[key].d.copy()
    n = net.config.stage_out_list(1)
    reorganize_width(net, bands={"stage1": [n[1]]})
    after = forward(net, x)
    for a, b in zip(before, after):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()   # float summation order only
    new = net.get_parameters()[key].d
    # channels moved only inside [0, n1) and [n1, n2): the same sets of filters in each band
    for lo, hi in ((0, n[1]), (n[1], n[2])):
        assert sorted(map(tuple, old[lo:hi].reshape(hi - lo, -1).round(6))) == \
            sorted(map(tuple, new[lo:hi].reshape(hi - lo, -1).round(6)))
    assert not np.array_equal(old, new)
