"""The detection batch loader, independent of NNablaNAS (``loader.DataLoader`` wraps it).

``DetectionLoader`` turns records into fixed-size batches::

    batch = loader.next()
    batch["inputs"]  == [images (B, 3, S, S) float32 RGB 0..255]
    batch["targets"] == [heatmap (B, C, S/4, S/4), wh (B, 2, ..), reg (B, 2, ..), mask (B, 1, ..)]

* The batch stream is endless: positions ``k*B .. k*B + B - 1`` of the concatenation of epochs;
  each epoch visits every image once (a fresh permutation per epoch when shuffling), and a batch
  may span two epochs. ``len(loader)`` is the number of images.
* Determinism: the permutation of epoch ``e`` and the augmentation of each sample are drawn from
  ``numpy.random.default_rng([seed, rank, e])`` / ``default_rng([seed, rank, e, position])``, so
  batches do not depend on thread timing or worker count.
* Speed: decoding (``cv2.imread``), warping and target drawing run on a thread pool of
  ``num_workers`` threads (OpenCV releases the GIL); ``prefetch`` batches are kept in flight.
  ``num_workers=0`` works synchronously.
* ``iterate_eval()`` yields ``(images, metas)`` over the records in order, once, with the
  evaluation letterbox: ``metas[i]`` is an ``EvalMeta`` (image id, original size, affine and its
  inverse, ground truth). With ``pad=True`` the last batch is padded to ``batch_size`` by repeating
  its last image (``len(metas)`` tells how many are real).
"""
import collections
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..detection.targets import TargetBuilder
from .records import DataError, ImageRecord, clip_record_boxes
from .transforms import AugmentConfig, Transform, invert_boxes


def read_image(path: str) -> np.ndarray:
    """BGR uint8 HWC; raises ``DataError`` naming the file."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        if not os.path.isfile(path):
            raise DataError(f"{path}: image file is missing")
        raise DataError(f"{path}: cannot decode image")
    return img


@dataclass
class EvalMeta:
    """What is needed to map one image's detections back and score them."""

    image_id: object
    width: int                 # original image size
    height: int
    affine: np.ndarray         # (2, 3) original -> input pixels
    inverse: np.ndarray        # (2, 3) input -> original pixels
    record: ImageRecord        # ground truth (original coordinates)

    def to_original(self, boxes: np.ndarray, stride: float = 1.0) -> np.ndarray:
        """Boxes in input pixels (or output-map units with ``stride=4``) -> original image, clipped."""
        return invert_boxes(np.asarray(boxes, np.float64) * stride, self.inverse, (self.width, self.height))


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class DetectionLoader:
    """Batches of augmented images and CenterNet targets from a list of ``ImageRecord``.

    Args:
        records: the images of this process (already split / sharded).
        num_classes: heatmap channels.
        batch_size: images per batch (per process).
        input_size: square network input side S (multiple of ``output_stride``).
        training: augment (if ``augment`` is not False) and shuffle (unless ``shuffle`` says otherwise).
        augment: ``True`` / ``False`` / dict of ``AugmentConfig`` fields.
        max_objs, output_stride, radius_mode: target settings (see ``detection.targets``).
        num_workers: decode/augment threads (0 = synchronous); prefetch: batches in flight.
        seed, rank: random streams (see module doc).
    """

    def __init__(self, records: Sequence[ImageRecord], num_classes: int, batch_size: int, input_size: int = 384,
                 training: bool = False, augment=True, shuffle: Optional[bool] = None, max_objs: int = 128,
                 output_stride: int = 4, radius_mode: str = "centernet", num_workers: Optional[int] = None,
                 prefetch: int = 2, seed: int = 0, rank: int = 0):
        if not records:
            raise DataError("the data loader got no images (empty split or shard)")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise DataError(f"batch_size={batch_size!r}: expected a positive integer")
        self.records = list(records)
        self.num_classes = int(num_classes)
        self.batch_size = batch_size
        self.input_size = input_size
        self.training = training
        self.augment_config = AugmentConfig.from_value(augment) if training else None
        self.shuffle = training if shuffle is None else bool(shuffle)
        self.transform_train = Transform(input_size, self.augment_config)
        self.transform_eval = Transform(input_size, None)
        try:
            self.targets = TargetBuilder(self.num_classes, input_size, output_stride, max_objs, radius_mode)
        except ValueError as err:
            raise DataError(str(err)) from None
        self.seed = int(seed)
        self.rank = int(rank)
        self.num_workers = default_workers() if num_workers is None else int(num_workers)
        self.prefetch = max(1, int(prefetch))
        self._pool = ThreadPoolExecutor(self.num_workers, thread_name_prefix="detofa-data") \
            if self.num_workers > 0 else None
        self._perms = {}
        self._next_batch = 0
        self._in_flight = collections.deque()

    # --- the batch stream ----------------------------------------------------------------------
    def __len__(self):
        return len(self.records)

    @property
    def batches_per_epoch(self) -> int:
        return max(1, len(self.records) // self.batch_size)

    def shapes(self) -> Tuple[tuple, List[tuple]]:
        """``(input_shape, target_shapes)`` with the batch axis, e.g. for NNablaNAS hparams."""
        s = self.input_size
        return (self.batch_size, 3, s, s), self.targets.shapes(self.batch_size)

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            n = len(self.records)
            p = np.random.default_rng([self.seed, self.rank, epoch]).permutation(n) if self.shuffle \
                else np.arange(n)
            self._perms = {e: v for e, v in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = p
        return p

    def _positions(self, k: int):
        n = len(self.records)
        out = []
        for pos in range(k * self.batch_size, (k + 1) * self.batch_size):
            epoch, i = divmod(pos, n)
            out.append((epoch, i, int(self._perm(epoch)[i])))
        return out

    def load_sample(self, index: int, rng: Optional[np.random.Generator] = None):
        """``(image (3,S,S), Targets, Transformed)`` of record ``index``; ``rng=None`` = letterbox."""
        return self._load(self.records[index], rng)

    def _load(self, rec: ImageRecord, rng: Optional[np.random.Generator], with_targets: bool = True):
        rec = clip_record_boxes(rec)
        img = read_image(rec.image_path)
        if img.shape[1] != rec.width or img.shape[0] != rec.height:
            src = rec.source or "its annotation"
            raise DataError(f"{rec.image_path}: image is {img.shape[1]}x{img.shape[0]} but {src} says "
                            f"{rec.width}x{rec.height}")
        tf = (self.transform_train if (rng is not None and self.augment_config is not None) else self.transform_eval)
        t = tf(img, rec.boxes, rng)
        tg = self.targets(t.boxes, rec.labels[t.keep], rec.ignore[t.keep]) if with_targets else None
        return t.image, tg, t

    def _sample_task(self, epoch: int, i: int, index: int):
        rng = np.random.default_rng([self.seed, self.rank, epoch, i]) if self.augment_config is not None else None
        image, tg, _ = self.load_sample(index, rng)
        return image, tg

    def _submit(self, k: int):
        tasks = self._positions(k)
        if self._pool is None:
            return [self._sample_task(*t) for t in tasks]
        return [self._pool.submit(self._sample_task, *t) for t in tasks]

    def next(self) -> dict:
        while len(self._in_flight) < (self.prefetch if self._pool is not None else 1):
            self._in_flight.append(self._submit(self._next_batch))
            self._next_batch += 1
        items = self._in_flight.popleft()
        samples = [f.result() for f in items] if self._pool is not None else items
        if self._pool is not None:
            self._in_flight.append(self._submit(self._next_batch))
            self._next_batch += 1
        images = np.stack([s[0] for s in samples])
        targets = [np.stack([s[1][j] for s in samples]) for j in range(4)]
        return {"inputs": [images], "targets": targets}

    @property
    def position(self) -> int:
        """Batches delivered by ``next()`` so far; ``reset(position)`` resumes the same stream."""
        return self._next_batch - len(self._in_flight)

    def reset(self, batch_index: int = 0):
        """Restart the stream at batch ``batch_index`` (e.g. when resuming)."""
        for items in self._in_flight:
            for f in items:
                if hasattr(f, "cancel"):
                    f.cancel()
        self._in_flight.clear()
        self._next_batch = int(batch_index)

    # --- evaluation ----------------------------------------------------------------------------
    def _eval_task(self, rec: ImageRecord):
        image, _, t = self._load(rec, None, with_targets=False)
        return image, EvalMeta(rec.image_id, rec.width, rec.height, t.affine, t.inverse, rec)

    def _measure_task(self, rec: ImageRecord, with_targets: bool):
        image, tg, _ = self._load(rec, None, with_targets=with_targets)
        return image, tg

    def _ordered(self, recs: Sequence[ImageRecord], bs: int, task) -> Iterator[list]:
        """``[task(r) for r in chunk]`` for consecutive chunks of ``bs`` records, in order, with
        ``prefetch`` chunks in flight on the thread pool."""
        starts = list(range(0, len(recs), bs))
        pool = self._pool

        def submit(s):
            chunk = recs[s:s + bs]
            if pool is None:
                return [task(r) for r in chunk]
            return [pool.submit(task, r) for r in chunk]

        pending = collections.deque(submit(s) for s in starts[:self.prefetch])
        nxt = len(pending)
        while pending:
            items = pending.popleft()
            if nxt < len(starts):
                pending.append(submit(starts[nxt]))
                nxt += 1
            yield [f.result() for f in items] if pool is not None else items

    def iterate_eval(self, batch_size: Optional[int] = None, pad: bool = False,
                     records: Optional[Sequence[ImageRecord]] = None
                     ) -> Iterator[Tuple[np.ndarray, List[EvalMeta]]]:
        """Yield ``(images (b, 3, S, S), metas)`` over ``records`` (default: this loader's) once, in
        order, letterboxed; see module doc."""
        bs = batch_size or self.batch_size
        recs = self.records if records is None else list(records)
        for got in self._ordered(recs, bs, self._eval_task):
            images = [g[0] for g in got]
            metas = [g[1] for g in got]
            if pad and len(images) < bs:
                images += [images[-1]] * (bs - len(images))
            yield np.stack(images), metas

    def eval_batches(self, records: Sequence[ImageRecord], batch_size: int, with_targets: bool = True
                     ) -> Iterator[Tuple[np.ndarray, Optional[List[np.ndarray]]]]:
        """Yield ``(images, [heatmap, wh, reg, mask] or None)`` over ``records`` once, in order,
        letterboxed (no augmentation); the last batch holds the remaining images (no padding)."""
        task = lambda r: self._measure_task(r, with_targets)  # noqa: E731
        for got in self._ordered(list(records), batch_size, task):
            images = np.stack([g[0] for g in got])
            targets = [np.stack([g[1][j] for g in got]) for j in range(4)] if with_targets else None
            yield images, targets

    def close(self):
        self.reset()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __del__(self):
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
        except Exception:
            pass


def search_split(n: int, valid_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, valid) index split of ``n`` images for searching, both sorted.

    ``round(n * valid_fraction)`` images (at least 1 when ``n >= 2`` and the fraction is > 0) go to
    valid, chosen by ``default_rng([seed, 7919]).permutation(n)``; independent of rank and workers.
    """
    if not 0 <= valid_fraction < 1:
        raise DataError(f"search_valid_fraction={valid_fraction!r}: expected a value in [0, 1)")
    n_val = int(round(n * valid_fraction))
    if valid_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    perm = np.random.default_rng([seed, 7919]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def shard(n: int, rank: int, n_procs: int, equal: bool = True) -> np.ndarray:
    """Indices of process ``rank``: ``rank, rank + n_procs, ...``; with ``equal`` every process gets
    ``n // n_procs`` of them (so all ranks run the same number of steps)."""
    if not (0 <= rank < n_procs):
        raise DataError(f"rank {rank} outside 0..{n_procs - 1}")
    idx = np.arange(rank, n, n_procs)
    if equal:
        idx = idx[:n // n_procs]
    return idx
