"""Per-path measurement of a supernet: BN re-calibration, validation loss, detections and AP.

Used by the runners (epoch-end checks, path-filter labels, search reports). A measurement is a
function of the path, the weights and the data alone, whenever and however often it is taken:

* BatchNorm re-calibration (once-for-all's ``set_running_statistics``) runs on one fixed
  calibration set (``data.fixed_sets``): ``bn_calib_images`` training images drawn once with a
  seed, letterboxed without augmentation, always in the same batches;
* the validation loss is one ordered pass over every image of D_val (or a fixed seeded subset),
  the last partial batch included, computed as the loss of one batch holding all of them
  (``detection.loss.dataset_loss``), so it does not depend on the batch size either;
* every measurement runs inside :func:`inference_context`, which leaves the network as it found
  it: arch, BatchNorm statistics and training flags (detectron2's ``inference_context`` restores
  the training flag; a supernet also needs the other two).
"""
import os
from contextlib import contextmanager
from typing import Dict, Optional

import nnabla as nn

from ..atomic import write_json_atomic
from ..reading import read_json
from ..data.fixed_sets import FixedImageSet, draw_ids, records_of
from ..data.records import DataError
from ..detection.decode import decode
from ..detection.loss import TERMS, centernet_loss_sums, check_loss_weights, dataset_loss
from .evaluators import make_evaluator

MEASUREMENT_FILE = "measurement_sets.json"


@contextmanager
def inference_context(model):
    """Evaluation mode inside the block; arch, BatchNorm statistics and training flags restored
    on exit (``DetectorNet.snapshot`` / ``restore``)."""
    snap = model.snapshot()
    model.apply(training=False)
    try:
        yield model
    finally:
        model.restore(snap)


class PathEvaluator:
    """Measures paths of ``model`` (a ``DetectorNet``: a supernet, or a static network for its own arch).

    ``calib``: the BatchNorm calibration set (a :class:`FixedImageSet` of training images, or None
    to keep the network's statistics); ``valid``: the images the validation loss is measured on
    (a FixedImageSet with targets). ``loss_weights``: the loss of the label (default (1, 0.1, 1)).
    """

    def __init__(self, model, calib: Optional[FixedImageSet], valid: Optional[FixedImageSet] = None,
                 loss_weights=None, top_k: int = 100, comm=None):
        if valid is not None and not valid.with_targets:
            raise ValueError("PathEvaluator: the validation set needs targets")
        self.model, self.calib, self.valid = model, calib, valid
        self.loss_weights = check_loss_weights(loss_weights)
        self.top_k, self.comm = int(top_k), comm
        self._graphs: Dict = {}

    # --- one path --------------------------------------------------------------------------
    @contextmanager
    def path(self, arch=None):
        """Inside the block the network runs ``arch`` (default: its current one) in evaluation mode
        with BatchNorm statistics re-calibrated on the calibration set; everything is restored after."""
        with inference_context(self.model):
            if arch is not None:
                self.model.set_arch(arch)
            if self.calib is not None:
                self.model.recalibrate_bn(self.calib.images())
            self.model.apply(training=False)
            yield self.model

    def _loss_graph(self, images_shape, target_shapes):
        key = (self.model.arch, tuple(images_shape), tuple(tuple(s) for s in target_shapes))
        g = self._graphs.get(key)
        if g is None:
            x = nn.Variable(images_shape)
            ts = [nn.Variable(s) for s in target_shapes]
            with nn.no_grad():
                sums = centernet_loss_sums(self.model(x), ts)
            flat = [v for pair in sums.values() for v in pair]
            self._graphs = {key: (x, ts, flat)}  # one arch at a time: graphs of other archs are dropped
            g = self._graphs[key]
        return g

    def _valid_sums(self) -> Dict:
        totals = {t: [0.0, 0.0] for t in TERMS}
        for images, targets in self.valid.batches():
            x, ts, flat = self._loss_graph(images.shape, [a.shape for a in targets])
            x.d = images
            for t, a in zip(ts, targets):
                t.d = a
            nn.forward_all(flat, clear_buffer=True)
            for i, term in enumerate(TERMS):
                totals[term][0] += float(flat[2 * i].d)
                totals[term][1] += float(flat[2 * i + 1].d)
        return totals

    def measure(self, arch=None) -> Dict[str, float]:
        """{"loss", "hm_loss", "wh_loss", "off_loss"} of the path on the validation set."""
        if self.valid is None:
            raise ValueError("PathEvaluator: no validation set to measure a loss on")
        with self.path(arch):
            return dataset_loss(self._valid_sums(), self.loss_weights)

    def validation_loss(self, arch=None) -> float:
        """The path's label: its loss on the validation set (see ``measure``)."""
        return self.measure(arch)["loss"]

    # --- detections and AP -------------------------------------------------------------------
    def detections(self, loader, split: Optional[str] = None, arch=None, batch_size: Optional[int] = None) -> Dict:
        """{image_id: {"boxes", "scores", "labels"}} in original-image pixels for this rank's share
        of ``split`` (read through ``loader.iterate_eval``; default: the images ``loader`` holds)."""
        bs = batch_size or loader.batch_size
        with self.path(arch):
            x = outputs = None
            out = {}
            for images, metas in loader.iterate_eval(split, batch_size=bs, pad=True):
                if x is None:
                    x = nn.Variable(images.shape)
                    with nn.no_grad():
                        outputs = self.model(x)
                x.d = images
                nn.forward_all(outputs, clear_buffer=True)
                decoded = decode(outputs[0].d, outputs[1].d, outputs[2].d, k=self.top_k)
                for meta, (boxes, scores, labels) in zip(metas, decoded):
                    out[meta.image_id] = {"boxes": meta.to_original(boxes), "scores": scores, "labels": labels}
        return out

    def evaluate(self, loader, split: Optional[str] = None, arch=None, metric: Optional[str] = None) -> Dict:
        """AP metrics of one path on ``split`` of ``loader`` (every rank detects its share; rank 0
        scores them all and returns the metrics, other ranks return {})."""
        dets = self.detections(loader, split, arch)
        evaluator = make_evaluator(loader.eval_dataset(split), metric)
        evaluator.reset()
        ids = list(dets)
        evaluator.process(ids, [dets[i] for i in ids])
        if self.comm is not None and self.comm.n_procs > 1:
            parts = gather_objects(self.comm, evaluator.export())
            if self.comm.rank != 0:
                return {}
            evaluator.reset()
            for part in parts:
                evaluator.merge(part)
        return evaluator.evaluate()


def gather_objects(comm, obj) -> list:
    """Every rank's ``obj`` on rank 0, in rank order (through the MPI communicator's object gather,
    or the communicator's own ``gather_objects``); [] elsewhere."""
    own = getattr(comm, "gather_objects", None)
    if callable(own):
        return own(obj)
    mpi = getattr(comm.comm, "mpi_comm", None) or getattr(comm, "mpi_comm", None)
    if mpi is None:
        from mpi4py import MPI  # multi-process evaluation needs mpi4py, as nnabla's MPI communicator does
        mpi = MPI.COMM_WORLD
    parts = mpi.gather(obj, root=0)
    return list(parts) if parts else []


# --- the run's fixed sets -------------------------------------------------------------------------
def measurement_sets(train_loader, valid_loader, out_dir: Optional[str], bn_calib_images: int,
                     valid_images: int = 0, batch_size: Optional[int] = None, seed: int = 0,
                     cache_mb: float = 1024.0):
    """(calibration set, validation set) of a run, as :class:`FixedImageSet`.

    The calibration set is ``bn_calib_images`` images of the whole training split (every rank
    the same, drawn with ``seed``); the validation set is every image of ``valid_loader``'s split
    (``valid_images`` > 0: a seeded subset of that many). The image ids are stored in
    ``out_dir/measurement_sets.json`` when the run first makes them and read back from there on
    a resumed run, so every measurement of a run, before and after a kill, uses the same images.
    ``valid_loader`` None: no validation set. ``bn_calib_images`` 0: no re-calibration.
    """
    path = os.path.join(out_dir, MEASUREMENT_FILE) if out_dir else None
    stored = None
    if path and os.path.isfile(path):
        stored = read_json(path, DataError, "measurement set file")
        if not isinstance(stored, dict) or not all(isinstance(stored.get(k), list) for k in ("calib_ids", "valid_ids")):
            raise DataError(f"{path}: not a measurement set file of this tool (expected an object with 'calib_ids' "
                            f"and 'valid_ids' lists); use a new output folder")
    if batch_size is None:
        batch_size = valid_loader.batch_size if valid_loader is not None else train_loader.batch_size
    bs = int(batch_size)
    train_ds = train_loader.dataset
    want = {"bn_calib_images": int(bn_calib_images), "valid_images": int(valid_images), "seed": int(seed),
            "train_split": train_ds.split, "valid_split": valid_loader.dataset.split if valid_loader else None}
    if stored is not None and {k: stored.get(k) for k in want} != want:
        raise DataError(f"{path}: this run was started with other measurement sets "
                        f"({ {k: stored.get(k) for k in want} }); use a new output folder or the same settings")
    if stored is None:
        stored = dict(want)
        stored["calib_ids"] = draw_ids([r.image_id for r in train_ds.records], bn_calib_images, seed, 0) \
            if bn_calib_images else []
        stored["valid_ids"] = draw_ids([r.image_id for r in valid_loader.dataset.records], valid_images, seed, 1) \
            if valid_loader is not None else []
        if path:
            write_json_atomic(path, stored, indent=1)
    calib = None
    if stored["calib_ids"]:
        recs = records_of(train_ds.records, stored["calib_ids"], f"{path or 'calibration set'}")
        calib = FixedImageSet(train_loader.loader, recs, bs, with_targets=False, name="BN calibration set",
                              cache_mb=cache_mb)
    valid = None
    if valid_loader is not None:
        recs = records_of(valid_loader.dataset.records, stored["valid_ids"], f"{path or 'validation set'}")
        valid = FixedImageSet(valid_loader.loader, recs, bs, with_targets=True, name="validation set",
                              cache_mb=cache_mb)
    return calib, valid
