"""What every reader produces: one ``ImageRecord`` per image, plus the problems it met.

Coordinate convention (all readers, transforms, targets and evaluators): boxes are
``x1, y1, x2, y2`` float32 in **0-based continuous pixel-edge coordinates**: the image spans
``[0, width] x [0, height]`` and pixel ``i`` covers ``[i, i + 1)``. Box width is ``x2 - x1``.
(VOC's 1-based inclusive ``xmin..xmax`` becomes ``[xmin - 1, xmax]``; COCO's ``[x, y, w, h]``
becomes ``[x, y, x + w, y + h]``.)

Problems come in two kinds:

* ``"fatal"``: the annotation cannot be used (malformed file, missing field or image, unknown
  class). Loading raises ``DataError``; ``check-data`` lists them.
* ``"box"``: a box that can be read but is degenerate or leaves the image. Loading clips it to the
  image and drops it when nothing is left; ``check-data`` lists them as errors too.
"""
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

ImageId = Union[str, int]


MAX_COORD = 1e9     # |coordinate| above this is refused (no image is that large; float32 boxes stay finite)


class DataError(ValueError):
    """An annotation or image that cannot be used; the message names the file and the field."""


class Problem(NamedTuple):
    kind: str       # "fatal" or "box"
    where: str      # file (and object) concerned
    message: str

    def __str__(self):
        return f"{self.where}: {self.message}"


@dataclass
class ImageRecord:
    """One annotated image. Arrays have one row per object, in annotation order."""

    image_id: ImageId
    image_path: str
    width: int
    height: int
    boxes: np.ndarray                       # (N, 4) float32, x1 y1 x2 y2, see module doc
    labels: np.ndarray                      # (N,) int64, contiguous class index
    difficult: np.ndarray                   # (N,) bool: VOC "difficult"
    crowd: np.ndarray                       # (N,) bool: COCO "iscrowd"
    source: str = ""                        # annotation file
    extra: dict = field(default_factory=dict)

    @property
    def num_objects(self) -> int:
        return int(len(self.labels))

    @property
    def ignore(self) -> np.ndarray:
        """Objects kept for evaluation but excluded from training targets."""
        return self.difficult | self.crowd


def make_record(image_id, image_path, width, height, boxes: Sequence, labels: Sequence,
                difficult: Optional[Sequence] = None, crowd: Optional[Sequence] = None,
                source: str = "") -> ImageRecord:
    n = len(labels)
    b = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    return ImageRecord(
        image_id=image_id, image_path=image_path, width=int(width), height=int(height), boxes=b,
        labels=np.asarray(labels, dtype=np.int64).reshape(n),
        difficult=np.zeros(n, bool) if difficult is None else np.asarray(difficult, dtype=bool).reshape(n),
        crowd=np.zeros(n, bool) if crowd is None else np.asarray(crowd, dtype=bool).reshape(n),
        source=source)


def box_problems(boxes: np.ndarray, width: int, height: int, eps: float = 1e-3) -> List[tuple]:
    """``(index, message)`` for each degenerate or out-of-image box."""
    out = []
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        if not (x2 > x1 and y2 > y1):
            out.append((i, f"degenerate box (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g})"))
        elif x1 < -eps or y1 < -eps or x2 > width + eps or y2 > height + eps:
            out.append((i, f"box (x1={x1:g}, y1={y1:g}, x2={x2:g}, y2={y2:g}) leaves the "
                           f"{width}x{height} image"))
    return out


def clip_record_boxes(rec: ImageRecord, min_size: float = 0.0) -> ImageRecord:
    """A copy with boxes clipped to the image and degenerate ones (w or h <= min_size) dropped."""
    b = rec.boxes.copy()
    np.clip(b[:, 0::2], 0, rec.width, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0, rec.height, out=b[:, 1::2])
    keep = ((b[:, 2] - b[:, 0]) > min_size) & ((b[:, 3] - b[:, 1]) > min_size)
    return ImageRecord(rec.image_id, rec.image_path, rec.width, rec.height, b[keep], rec.labels[keep],
                       rec.difficult[keep], rec.crowd[keep], rec.source, dict(rec.extra))


def raise_fatal(problems: Sequence[Problem]):
    fatal = [p for p in problems if p.kind == "fatal"]
    if fatal:
        more = f" (and {len(fatal) - 1} more problem(s); run check-data to list them)" if len(fatal) > 1 else ""
        raise DataError(str(fatal[0]) + more)


@dataclass
class DetectionDataset:
    """A read split: records in split order plus what is needed to map classes and ids back."""

    format: str
    root: str
    split: str
    class_names: Tuple[str, ...]
    records: List[ImageRecord]
    cat_ids: Optional[Tuple[int, ...]] = None      # COCO: original category id per class index
    coco_json: Optional[dict] = None               # COCO: the instances JSON as read
    problems: List[Problem] = field(default_factory=list)   # non-fatal ("box") problems met

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self):
        return len(self.records)

    def category_id(self, label: int):
        """The id written in detection files: COCO category id, or the VOC class name."""
        return self.cat_ids[label] if self.format == "coco" else self.class_names[label]

    def label_of(self, category_id) -> Optional[int]:
        """Inverse of ``category_id``; ``None`` when unknown."""
        if self.format == "coco":
            try:
                return self.cat_ids.index(category_id)
            except ValueError:
                return None
        try:
            return self.class_names.index(category_id)
        except ValueError:
            return None

    def subset(self, indices: Sequence[int], split: Optional[str] = None) -> "DetectionDataset":
        return DetectionDataset(self.format, self.root, split or self.split, self.class_names,
                                [self.records[i] for i in indices], self.cat_ids, self.coco_json, self.problems)
