"""Images per second of the training data loader (decode + augmentation + CenterNet targets) on
this CPU, on generated VOC-format data at 128 px and 384 px, with the default thread pool and
synchronously, plus a per-stage breakdown (one thread). ``python benchmarks/bench_loader.py
[--batches N] [--workers W]``."""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from nnabla_nas_detofa.data.loader import make_loader  # noqa: E402
from nnabla_nas_detofa.data.pipeline import default_workers, read_image  # noqa: E402
from nnabla_nas_detofa.data.records import clip_record_boxes  # noqa: E402
from nnabla_nas_detofa.data.synthetic import make_synthetic_voc  # noqa: E402


def loader_rate(root, size, workers, batches, batch_size=16):
    ld = make_loader(False, True, batch_size, root=root, train_split="synth_train", test_split="synth_val",
                     input_size=size, num_workers=workers, seed=0)
    for _ in range(2):
        ld.next()                                       # warm-up (thread start, first decodes)
    t = time.perf_counter()
    for _ in range(batches):
        ld.next()
    dt = time.perf_counter() - t
    ld.close()
    return batches * batch_size / dt


def stages(root, size, n=64):
    ld = make_loader(False, True, 1, root=root, train_split="synth_train", test_split="synth_val",
                     input_size=size, num_workers=0)
    recs = ld.records[:n]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    imgs = [read_image(r.image_path) for r in recs]
    t1 = time.perf_counter()
    outs = [ld.transform_train(im, clip_record_boxes(r).boxes, rng) for im, r in zip(imgs, recs)]
    t2 = time.perf_counter()
    for o, r in zip(outs, recs):
        ld.targets(o.boxes, r.labels[o.keep], r.ignore[o.keep])
    t3 = time.perf_counter()
    ld.close()
    return {"decode": (t1 - t0) / n * 1e3, "augment": (t2 - t1) / n * 1e3, "targets": (t3 - t2) / n * 1e3}


def train_step_rate(size: int, width: float, batch: int = 16, steps: int = 4) -> float:
    """Images/s of supernet training steps (random paths, graph rebuilt each step) on this CPU."""
    import random

    import nnabla as nn
    import nnabla.solvers as S
    import numpy as np

    from nnabla_nas_detofa.nets.supernet import DetOFASupernet
    net = DetOFASupernet(num_classes=5, width_mult=width, divisor=1)
    solver = S.Adam(1e-3)
    solver.set_parameters(net.get_net_parameters(grad_only=True))
    h = size // 4
    x = nn.Variable.from_numpy_array(np.random.default_rng(0).uniform(0, 255, (batch, 3, size, size)))
    ts = [nn.Variable.from_numpy_array(np.zeros((batch, c, h, h), np.float32)) for c in (5, 2, 2, 1)]
    rng = random.Random(0)

    def step():
        net.set_arch(net.space.sample(rng))
        net.apply(training=True)
        loss = net.loss(net(x), ts)
        solver.zero_grad()
        loss.forward(clear_no_need_grad=True)
        loss.backward(clear_buffer=True)
        net.commit_bn_statistics()
        solver.update()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--workers", type=int, default=default_workers())
    args = p.parse_args([] if argv is None else argv)
    tmp = tempfile.mkdtemp(prefix="bench_loader_")
    try:
        print(f"cpus: {os.cpu_count()}, loader threads: {args.workers}, batch 16, training augmentation")
        for size, n_train in ((128, 256), (384, 128)):
            root = os.path.join(tmp, f"s{size}")
            t = time.perf_counter()
            make_synthetic_voc(root, n_train, 16, size, seed=0)
            gen = time.perf_counter() - t
            st = stages(root, size)
            fast = loader_rate(root, size, args.workers, args.batches)
            sync = loader_rate(root, size, 0, max(4, args.batches // 2))
            print(f"{size:4d} px: {fast:7.1f} images/s ({args.workers} threads), {sync:7.1f} images/s "
                  f"(synchronous); per image: decode {st['decode']:.2f} ms, warp+colour {st['augment']:.2f} ms, "
                  f"targets {st['targets']:.2f} ms; generating {n_train + 16} images took {gen:.1f}s")
            if size == 128:
                for width in (0.125, 0.25):
                    train = train_step_rate(size, width)
                    print(f"      supernet training at width {width}: {train:7.1f} images/s; loader / training "
                          f"= {fast / train:.1f}x (the loader must stay above 1x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
