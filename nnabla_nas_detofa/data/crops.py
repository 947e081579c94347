"""Object crops of a detection split as a classification data set (the demo's stand-in for ImageNet).

The CPU demo cannot pre-train on ImageNet; it pre-trains the backbone as a classifier on crops of
its own objects instead (one crop per object, the object's class its label), and the detector then
starts from that backbone exactly as it would start from an ImageNet supernet (``pretrained``).

A crop is the square of side ``max(w, h) * (1 + context)`` around the box centre, warped to
``size x size`` (the affine convention of ``data.transforms``); training crops jitter the side
(x ``U(scale_range)``) and centre (``U(-shift, shift)`` of the side) and mirror the crop with
probability 0.5.
Objects marked difficult or crowd, or smaller than ``min_box_size`` pixels, are left out.
Batches: ``(images (B, 3, S, S) float32 RGB 0..255, labels (B,) int32)``, drawn as the detection
loader draws them: a fresh permutation per epoch from ``default_rng([seed, epoch])`` and each
crop's jitter from ``default_rng([seed, epoch, position])``, so the stream is a function of the seed.
"""
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .pipeline import read_image
from .records import DataError, ImageRecord
from .transforms import affine_transform, compose, cv2_matrix, flip_matrix


class CropSet:
    """Batches of object crops of ``records`` (see module doc)."""

    def __init__(self, records: Sequence[ImageRecord], size: int, batch_size: int, training: bool, seed: int = 0,
                 context: float = 0.25, scale_range: Tuple[float, float] = (0.85, 1.25), shift: float = 0.1,
                 min_box_size: float = 4.0, name: str = "crops"):
        self.records = list(records)
        self.objects: List[Tuple[int, int]] = []
        for i, r in enumerate(self.records):
            wh = r.boxes[:, 2:] - r.boxes[:, :2]
            for j in range(r.num_objects):
                if not r.ignore[j] and min(wh[j]) >= min_box_size:
                    self.objects.append((i, j))
        if not self.objects:
            raise DataError(f"{name}: no object large enough to crop (min_box_size {min_box_size} px)")
        self.size, self.batch_size, self.training, self.seed = int(size), int(batch_size), bool(training), int(seed)
        self.context, self.scale_range, self.shift = float(context), tuple(scale_range), float(shift)
        self._next = 0
        self._perms = {}

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def labels(self) -> np.ndarray:
        return np.array([self.records[i].labels[j] for i, j in self.objects], np.int32)

    def crop(self, k: int, rng: Optional[np.random.Generator]) -> Tuple[np.ndarray, int]:
        i, j = self.objects[k]
        rec = self.records[i]
        img = read_image(rec.image_path)
        x1, y1, x2, y2 = (float(v) for v in rec.boxes[j])
        side = max(x2 - x1, y2 - y1) * (1.0 + self.context)
        centre = np.array([(x1 + x2) / 2.0, (y1 + y2) / 2.0])
        flip = False
        if rng is not None:
            side *= rng.uniform(*self.scale_range)
            centre = centre + rng.uniform(-self.shift, self.shift, size=2) * side
            flip = rng.random() < 0.5
        m = affine_transform(centre, side, self.size)
        if flip:   # mirrored in the crop: the object stays where the crop was taken
            m = compose(flip_matrix(self.size), m)
        warped = cv2.warpAffine(img, cv2_matrix(m), (self.size, self.size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return warped[:, :, ::-1].transpose(2, 0, 1).astype(np.float32), int(rec.labels[j])

    def _perm(self, epoch: int) -> np.ndarray:
        p = self._perms.get(epoch)
        if p is None:
            p = np.random.default_rng([self.seed, epoch]).permutation(len(self.objects)) if self.training \
                else np.arange(len(self.objects))
            self._perms = {epoch: p}
        return p

    def next(self) -> Tuple[np.ndarray, np.ndarray]:
        """The next training batch of the endless stream."""
        n = len(self.objects)
        images, labels = [], []
        for pos in range(self._next * self.batch_size, (self._next + 1) * self.batch_size):
            epoch, i = divmod(pos, n)
            rng = np.random.default_rng([self.seed, epoch, i]) if self.training else None
            img, lab = self.crop(int(self._perm(epoch)[i]), rng)
            images.append(img)
            labels.append(lab)
        self._next += 1
        return np.stack(images), np.array(labels, np.int32)

    @property
    def position(self) -> int:
        return self._next

    def reset(self, position: int = 0):
        self._next = int(position)

    def batches(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """One ordered pass without jitter, the last batch holding the rest."""
        for s in range(0, len(self.objects), self.batch_size):
            got = [self.crop(k, None) for k in range(s, min(s + self.batch_size, len(self.objects)))]
            yield np.stack([g[0] for g in got]), np.array([g[1] for g in got], np.int32)
