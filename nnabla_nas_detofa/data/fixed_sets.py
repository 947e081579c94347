"""Fixed image sets: an ordered, unaugmented pass over a fixed list of images (measurements).

A path's measurement must be a function of the path, the weights and the data alone. Measuring
reads a :class:`FixedImageSet`: the same images, in the same order, through the evaluation
letterbox (no random augmentation), in batches of a fixed size, the last partial batch included,
every image exactly once per pass. Two such sets serve DetOFA's per-path measurement:

* the BatchNorm calibration set: ``bn_calib_images`` training images drawn once with a seed
  (once-for-all re-calibrates every sub-network on one fixed random subset of 2,000 training
  images), see :func:`draw_ids`;
* D_val (the validation images), all of it or a fixed seeded subset.

Batches are decoded by the owning loader's thread pool; a set whose batches fit in
``cache_mb`` is kept in memory after its first pass (the values are identical either way).
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .records import DataError, ImageRecord


def draw_ids(image_ids: Sequence, n: int, seed: int, salt: int = 0) -> List:
    """``n`` of ``image_ids`` (all when ``n`` is 0 or at least their number), drawn without
    replacement by ``default_rng([seed, 2718, salt])``, in the order of ``image_ids``."""
    ids = list(image_ids)
    if not n or n >= len(ids):
        return ids
    pick = np.sort(np.random.default_rng([int(seed), 2718, int(salt)]).choice(len(ids), int(n), replace=False))
    return [ids[i] for i in pick]


def records_of(records: Sequence[ImageRecord], ids: Sequence, where: str) -> List[ImageRecord]:
    """The records with these image ids, in the order of ``ids``; a missing id is an error naming it."""
    by_id = {r.image_id: r for r in records}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(f"{where}: {len(missing)} image(s) of the stored set are not in the data any more "
                        f"(first: {missing[0]!r}); the data set changed since the run started")
    return [by_id[i] for i in ids]


class FixedImageSet:
    """Batches ``(images (b, 3, S, S), targets [heatmap, wh, reg, mask] or None)`` over ``records``.

    ``loader``: a ``pipeline.DetectionLoader`` (its evaluation transform, target builder and
    thread pool are used). ``batch_size``: images per batch; the last batch holds the rest.
    """

    def __init__(self, loader, records: Sequence[ImageRecord], batch_size: int, with_targets: bool,
                 name: str = "images", cache_mb: float = 1024.0):
        if not records:
            raise DataError(f"{name}: the set holds no image")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"{name}: batch size {batch_size!r} must be a positive integer")
        self.loader, self.records = loader, list(records)
        self.batch_size, self.with_targets, self.name = batch_size, bool(with_targets), name
        self.cache_bytes = float(cache_mb) * 2 ** 20
        self._cache: Optional[List[Tuple[np.ndarray, Optional[List[np.ndarray]]]]] = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def image_ids(self) -> List:
        return [r.image_id for r in self.records]

    def _pass(self) -> Iterator[Tuple[np.ndarray, Optional[List[np.ndarray]]]]:
        bs, recs = self.batch_size, self.records
        for images, targets in self.loader.eval_batches(recs, bs, self.with_targets):
            yield images, targets

    def batches(self) -> Iterator[Tuple[np.ndarray, Optional[List[np.ndarray]]]]:
        """One ordered pass; every image exactly once."""
        if self._cache is not None:
            yield from self._cache
            return
        kept, size = [], 0
        for images, targets in self._pass():
            if kept is not None:
                size += images.nbytes + (sum(t.nbytes for t in targets) if targets is not None else 0)
                kept = kept if size <= self.cache_bytes else None
                if kept is not None:
                    kept.append((images, targets))
            yield images, targets
        if kept is not None:
            self._cache = kept

    def images(self) -> Iterator[np.ndarray]:
        """The image batches alone (e.g. for BatchNorm re-calibration)."""
        for images, _ in self.batches():
            yield images
