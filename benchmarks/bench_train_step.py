"""Training-step time of a supernet path vs its extracted static network, same arch, same batch.

The supernet step is what the trainer does each step: set the path, build the graph, forward,
backward, solver update over the supernet's parameters. The static step reuses one graph (a
static network never changes) and updates only its own parameters. Goal: ratio <= 1.10.
"""
import random
import time

import nnabla as nn
import nnabla.solvers as S
import numpy as np

from nnabla_nas_detofa.nets.static import extract
from nnabla_nas_detofa.nets.supernet import DetOFASupernet

WIDTH, SIZE, BATCH, CLASSES = 0.25, 128, 8, 5
STEPS, WARMUP = 6, 2


def _data(rng):
    h = SIZE // 4
    x = rng.uniform(0, 255, (BATCH, 3, SIZE, SIZE)).astype(np.float32)
    hm = np.zeros((BATCH, CLASSES, h, h), np.float32)
    wh, reg, mask = (np.zeros((BATCH, c, h, h), np.float32) for c in (2, 2, 1))
    for b in range(BATCH):
        cy, cx, c = rng.integers(0, h), rng.integers(0, h), rng.integers(0, CLASSES)
        hm[b, c, cy, cx], mask[b, 0, cy, cx], wh[b, :, cy, cx] = 1.0, 1.0, (5.0, 7.0)
    return [x], [hm, wh, reg, mask]


def _graph(net, inputs, targets):
    xs = [nn.Variable.from_numpy_array(a) for a in inputs]
    ts = [nn.Variable.from_numpy_array(a) for a in targets]
    net.apply(training=True)
    return net.loss(net(*xs), ts)


def _time(step):
    for _ in range(WARMUP):
        step()
    t = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - t) / STEPS


def main():
    rng = np.random.default_rng(0)
    inputs, targets = _data(rng)
    sup = DetOFASupernet(num_classes=CLASSES, width_mult=WIDTH, divisor=1)
    sup_solver = S.Adam(5e-4)
    sup_solver.set_parameters(sup.get_net_parameters(grad_only=True))
    space = sup.space
    archs = {"min": space.extreme(False), "random": space.sample(random.Random(1)), "max": space.extreme(True)}
    print(f"width_mult {WIDTH}, {SIZE} px, batch {BATCH}, {STEPS} timed steps (CPU, single thread)")
    print(f"{'path':8s} {'MFLOPs':>8s} {'supernet s/step':>16s} {'static s/step':>14s} {'ratio':>6s}")
    ratios = []
    for name, arch in archs.items():
        def sup_step():
            sup.set_arch(arch)
            loss = _graph(sup, inputs, targets)
            sup_solver.zero_grad()
            loss.forward(clear_no_need_grad=True)
            loss.backward(clear_buffer=True)
            sup_solver.update()

        sup.set_arch(arch)
        static = extract(sup, arch)
        st_solver = S.Adam(5e-4)
        st_solver.set_parameters(static.get_net_parameters(grad_only=True))
        st_loss = _graph(static, inputs, targets)

        def static_step():
            st_solver.zero_grad()
            st_loss.forward(clear_no_need_grad=True)
            st_loss.backward(clear_buffer=True)
            st_solver.update()

        t_sup, t_st = _time(sup_step), _time(static_step)
        ratios.append(t_sup / t_st)
        print(f"{name:8s} {sup.flops(SIZE):8.1f} {t_sup:16.4f} {t_st:14.4f} {t_sup / t_st:6.2f}")
    print(f"mean ratio supernet / static: {np.mean(ratios):.2f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
