"""Per-path evaluation of a supernet: BN re-calibration, validation loss, detections and AP.

Used by the runners (epoch-end checks, path-filter labels, search reports). A path is evaluated
the once-for-all way: set it, re-estimate its BatchNorm statistics on ``calib_batches`` training
batches (every batch is used), then run the evaluation images in evaluation mode. Graphs are
built once per path and batch shape and reused over all batches.
"""
from typing import Dict, Iterable, Optional

import nnabla as nn
import numpy as np

from ..detection.decode import decode
from .evaluators import make_evaluator


class PathEvaluator:
    """``model``: a supernet (``set_arch``, ``recalibrate_bn``, ``loss``); ``calib``: a training
    loader (``next()`` dicts), ``valid``: a loader of the images to score (``next()`` for the
    loss, ``iterate_eval``/``eval_dataset`` for AP). ``comm``: optional NNablaNAS communicator;
    losses and detections are then combined over ranks."""

    def __init__(self, model, calib, valid, calib_batches: int = 2, top_k: int = 100, comm=None):
        self.model, self.calib, self.valid = model, calib, valid
        self.calib_batches, self.top_k, self.comm = int(calib_batches), int(top_k), comm

    def set_path(self, arch, calib_batches: Optional[int] = None) -> int:
        """Make ``arch`` current and re-calibrate its BatchNorms; returns the images used."""
        self.model.set_arch(arch)
        n = self.calib_batches if calib_batches is None else int(calib_batches)
        if n <= 0:
            return 0
        return self.model.recalibrate_bn(self.calib.next()["inputs"][0] for _ in range(n))

    def _graph(self, shape, target_shapes=None):
        """Evaluation-mode graph for one batch shape: (input, outputs, targets, loss)."""
        self.model.apply(training=False)
        x = nn.Variable(shape)
        with nn.no_grad():
            outputs = self.model(x)
            if target_shapes is None:
                return x, outputs, None, None
            ts = [nn.Variable(s) for s in target_shapes]
            return x, outputs, ts, self.model.loss(outputs, ts)

    def validation_loss(self, arch, n_batches: int = 0, calib_batches: Optional[int] = None) -> float:
        """Mean CenterNet loss of the path over ``n_batches`` batches of ``valid`` (0: one epoch)."""
        self.set_path(arch, calib_batches)
        n = n_batches or max(1, len(self.valid) // self.valid.batch_size)
        x = ts = loss = None
        total = 0.0
        for _ in range(n):
            batch = self.valid.next()
            img = batch["inputs"][0]
            if x is None or tuple(x.shape) != img.shape:
                x, _, ts, loss = self._graph(img.shape, [a.shape for a in batch["targets"]])
            x.d = img
            for t, a in zip(ts, batch["targets"]):
                t.d = a
            loss.forward(clear_buffer=True)
            total += float(loss.d)
        return self._mean_over_ranks(total / n)

    def _mean_over_ranks(self, value: float) -> float:
        if self.comm is None or self.comm.n_procs == 1:
            return value
        arr = nn.NdArray.from_numpy_array(np.array([value], np.float32))
        self.comm.all_reduce([arr], division=True, inplace=False)
        return float(arr.data[0])

    def detections(self, arch=None, split: Optional[str] = None, batch_size: Optional[int] = None,
                   calib_batches: Optional[int] = None) -> Dict:
        """{image_id: {"boxes", "scores", "labels"}} in original-image pixels for this rank's images."""
        if arch is not None:
            self.set_path(arch, calib_batches)
        bs = batch_size or self.valid.batch_size
        x = outputs = None
        out = {}
        for images, metas in self.valid.iterate_eval(split, batch_size=bs, pad=True):
            if x is None:
                x, outputs, _, _ = self._graph(images.shape)
            x.d = images
            nn.forward_all(outputs, clear_buffer=True)
            decoded = decode(outputs[0].d, outputs[1].d, outputs[2].d, k=self.top_k)
            for meta, (boxes, scores, labels) in zip(metas, decoded):
                out[meta.image_id] = {"boxes": meta.to_original(boxes), "scores": scores, "labels": labels}
        return out

    def evaluate(self, arch, split: Optional[str] = None, metric: Optional[str] = None,
                 calib_batches: Optional[int] = None) -> Dict:
        """AP metrics of one path on ``split`` (default: the images ``valid`` was built on)."""
        dets = self.detections(arch, split, calib_batches=calib_batches)
        dataset = self.valid.eval_dataset(split)
        evaluator = make_evaluator(dataset, metric)
        evaluator.reset()
        if self.comm is not None and self.comm.n_procs > 1:
            dets = _gather_detections(self.comm, dets)
            if self.comm.rank != 0:
                return {}
        ids = list(dets)
        evaluator.process(ids, [dets[i] for i in ids])
        return evaluator.evaluate()


def _gather_detections(comm, dets: Dict) -> Dict:
    """All ranks' detections on rank 0 (through the MPI communicator's object gather)."""
    mpi = getattr(comm.comm, "mpi_comm", None) or getattr(comm, "mpi_comm", None)
    if mpi is None:
        from mpi4py import MPI  # multi-process evaluation needs mpi4py, as nnabla's MPI communicator does
        mpi = MPI.COMM_WORLD
    parts = mpi.gather(dets, root=0)
    merged = {}
    if parts:
        for p in parts:
            merged.update(p)
    return merged


def evaluate_paths(evaluator: PathEvaluator, archs: Iterable, split: Optional[str] = None,
                   metric: Optional[str] = None) -> list:
    """[{"arch", "flops", ...metrics}] for several paths."""
    rows = []
    for arch in archs:
        m = evaluator.evaluate(arch, split, metric)
        rows.append({"arch": evaluator.model.arch.to_dict(),
                     "flops": evaluator.model.flops(evaluator.valid.options["input_size"]), **m})
    return rows
