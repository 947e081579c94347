"""Training-step time of a supernet path vs its extracted static network, same arch, same batch.

The supernet step is what the trainer does each step: set the path, build the graph, forward,
backward, commit the sliced BatchNorms' running statistics, solver update over the supernet's
parameters. The static step reuses one graph (a static network never changes) and updates only
its own parameters. Goal: ratio <= 1.10.

Supernet and static steps alternate, so both see the same load of a shared machine, and each
phase is timed separately; the table gives medians over the timed steps (wall clock, and the
process's CPU time, which other processes on the machine disturb less). Breakdown per phase:
build (set_arch + apply + graph on the reused input variables), fwd, bwd, commit, update.
"""
import os
import random
import sys
import time

import nnabla as nn
import nnabla.solvers as S
import numpy as np

from nnabla_nas_detofa.nets.static import extract
from nnabla_nas_detofa.nets.supernet import DetOFASupernet

WIDTH, SIZE, BATCH, CLASSES = 0.25, 128, 8, 5
STEPS, WARMUP = 8, 2
PHASES = ("build", "fwd", "bwd", "commit", "update")


def _data(rng):
    h = SIZE // 4
    x = rng.uniform(0, 255, (BATCH, 3, SIZE, SIZE)).astype(np.float32)
    hm = np.zeros((BATCH, CLASSES, h, h), np.float32)
    wh, reg, mask = (np.zeros((BATCH, c, h, h), np.float32) for c in (2, 2, 1))
    for b in range(BATCH):
        cy, cx, c = rng.integers(0, h), rng.integers(0, h), rng.integers(0, CLASSES)
        hm[b, c, cy, cx], mask[b, 0, cy, cx], wh[b, :, cy, cx] = 1.0, 1.0, (5.0, 7.0)
    return [x], [hm, wh, reg, mask]


def _variables(inputs, targets):
    """Input and target variables, made once and reused by every graph (NNablaNAS's placeholders)."""
    return [nn.Variable.from_numpy_array(a) for a in inputs], [nn.Variable.from_numpy_array(a) for a in targets]


def _graph(net, xs, ts):
    net.apply(training=True)
    return net.loss(net(*xs), ts)


class _Clock:
    """Wall and CPU seconds of each phase of one step."""

    def __init__(self):
        self.wall, self.cpu = {}, {}
        self._t = None

    def start(self):
        self._t = (time.perf_counter(), time.process_time())

    def lap(self, phase):
        w, c = time.perf_counter(), time.process_time()
        self.wall[phase] = self.wall.get(phase, 0.0) + w - self._t[0]
        self.cpu[phase] = self.cpu.get(phase, 0.0) + c - self._t[1]
        self._t = (w, c)


def _nodes(build):
    """(graph nodes created by ``build()``, graph nodes of the loss it returns)."""
    created = [0]
    where = os.path.join("nnabla", "function_bases.py")  # every graph node is made by one of its functions

    def count(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.endswith(where):
            created[0] += 1

    sys.setprofile(count)
    try:
        loss = build()
    finally:
        sys.setprofile(None)
    nodes = []
    loss.visit(nodes.append)
    return created[0], len(nodes)


def _median(clocks, attr, phase=None):
    return float(np.median([sum(getattr(c, attr).values()) if phase is None else getattr(c, attr).get(phase, 0.0)
                            for c in clocks]))


def main():
    rng = np.random.default_rng(0)
    inputs, targets = _variables(*_data(rng))
    sup = DetOFASupernet(num_classes=CLASSES, width_mult=WIDTH, divisor=1)
    sup_solver = S.Adam(5e-4)
    sup_solver.set_parameters(sup.get_net_parameters(grad_only=True))
    space = sup.space
    archs = {"min": space.extreme(False), "random": space.sample(random.Random(1)), "max": space.extreme(True)}
    print(f"width_mult {WIDTH}, {SIZE} px, batch {BATCH}, {STEPS} timed steps each, alternating (CPU, medians)")
    print(f"{'path':8s} {'MFLOPs':>8s} {'supernet s/step':>16s} {'static s/step':>14s} {'ratio':>6s}")
    ratios, details = [], []
    for name, arch in archs.items():
        def sup_step(clock):
            clock.start()
            sup.set_arch(arch)
            loss = _graph(sup, inputs, targets)
            clock.lap("build")
            sup_solver.zero_grad()
            loss.forward(clear_no_need_grad=True)
            clock.lap("fwd")
            loss.backward(clear_buffer=True)
            clock.lap("bwd")
            sup.commit_bn_statistics()
            clock.lap("commit")
            sup_solver.update()
            clock.lap("update")

        sup.set_arch(arch)
        static = extract(sup, arch)
        st_solver = S.Adam(5e-4)
        st_solver.set_parameters(static.get_net_parameters(grad_only=True))
        st_loss = _graph(static, inputs, targets)

        def static_step(clock):
            clock.start()
            st_solver.zero_grad()
            st_loss.forward(clear_no_need_grad=True)
            clock.lap("fwd")
            st_loss.backward(clear_buffer=True)
            clock.lap("bwd")
            st_solver.update()
            clock.lap("update")

        sup_clocks, st_clocks = [], []
        for i in range(WARMUP + STEPS):
            for step, clocks in ((sup_step, sup_clocks), (static_step, st_clocks)):
                clock = _Clock()
                step(clock)
                if i >= WARMUP:
                    clocks.append(clock)
        t_sup, t_st = _median(sup_clocks, "wall"), _median(st_clocks, "wall")
        ratios.append(t_sup / t_st)
        print(f"{name:8s} {sup.flops(SIZE):8.1f} {t_sup:16.4f} {t_st:14.4f} {t_sup / t_st:6.2f}")
        n_sup = _nodes(lambda: (sup.set_arch(arch), _graph(sup, inputs, targets))[1])
        n_static = _nodes(lambda: _graph(static, inputs, targets))  # built once, not every step
        details.append((name, sup_clocks, st_clocks, n_sup, n_static))
    print(f"mean ratio supernet / static: {np.mean(ratios):.2f} (goal <= 1.10)")
    print("\nbreakdown, median ms per phase (wall / CPU of this process); graph nodes built per step / in the graph")
    print(f"{'path':8s} {'net':8s} " + " ".join(f"{p:>13s}" for p in PHASES) + f" {'total':>13s} {'nodes':>9s}")
    for name, sup_clocks, st_clocks, n_sup, n_st in details:
        for net, clocks, n in (("supernet", sup_clocks, n_sup), ("static", st_clocks, n_st)):
            cells = [f"{1e3 * _median(clocks, 'wall', p):6.1f}/{1e3 * _median(clocks, 'cpu', p):6.1f}" for p in PHASES]
            total = f"{1e3 * _median(clocks, 'wall'):6.1f}/{1e3 * _median(clocks, 'cpu'):6.1f}"
            print(f"{name:8s} {net:8s} " + " ".join(f"{c:>13s}" for c in cells) + f" {total:>13s} {n[0]:4d}/{n[1]:4d}")
        cpu_ratio = _median(sup_clocks, "cpu") / _median(st_clocks, "cpu")
        print(f"{name:8s} CPU-time ratio supernet / static: {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
