"""One front door to both formats: ``open_dataset("voc:PATH", split)`` / ``open_dataset("coco:PATH")``."""
import os
import threading
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from .records import DataError, ImageRecord, Problem

FORMATS = ("voc", "coco")
DEFAULT_SPLITS = {
    # purpose -> format -> split
    "train": {"voc": "2007_trainval+2012_trainval", "coco": "train2017"},
    "test": {"voc": "2007_test", "coco": "val2017"},
}


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


def parse_spec(spec: str) -> Tuple[str, str]:
    """``"voc:PATH"`` -> ``("voc", PATH)``."""
    fmt, sep, path = str(spec).partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise DataError(f"dataset {spec!r}: expected voc:PATH or coco:PATH")
    return fmt, path


def available_splits(fmt: str, root: str) -> List[str]:
    if fmt == "voc":
        from .voc import available_splits as f
    else:
        from .coco import available_splits as f
    return f(root)


def default_split(fmt: str, root: str, purpose: str = "test") -> str:
    """The split used when none is named.

    ``train``: VOC ``2007_trainval+2012_trainval`` / COCO ``train2017``. ``test``: VOC ``2007_test``
    / COCO ``val2017``; when absent (e.g. synthetic data), the first year folder's ``test`` then
    ``val`` set (VOC) or the only annotation file (COCO).
    """
    split = DEFAULT_SPLITS[purpose][fmt]
    avail = available_splits(fmt, root)
    if all(s in avail for s in split.split("+")):
        return split
    if fmt == "voc":
        wanted = ("trainval", "train") if purpose == "train" else ("test", "val")
        for name in wanted:
            for s in avail:
                if s.rpartition("_")[2] == name or s == name:
                    return s
    elif len(avail) == 1:
        return avail[0]
    raise DataError(f"{root}: no split named and the default {split!r} is not there "
                    f"(available: {', '.join(avail) or 'none'})")


_CACHE = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _cache_key(fmt, root, split, classes):
    files = []
    if fmt == "coco":
        from .coco import annotation_path
        files.append(annotation_path(root, split))
    try:
        stamp = tuple(os.stat(f).st_mtime_ns for f in files)
    except OSError:
        stamp = None
    cls = None if classes is None else (classes if isinstance(classes, str) else tuple(classes))
    return fmt, os.path.abspath(root), split, cls, stamp


def open_dataset(spec: str, split: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 cache: bool = False) -> DetectionDataset:
    """``open_dataset("voc:data/VOCdevkit", "2007_test")``: see ``load_dataset``."""
    fmt, root = parse_spec(spec)
    return load_dataset(fmt, root, split, classes, cache)


def load_dataset(fmt: str, root: str, split: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 cache: bool = False) -> DetectionDataset:
    """Read a split of a VOC- (``fmt="voc"``) or COCO-layout (``"coco"``) data set.

    ``split=None`` takes ``default_split(fmt, root, "test")``. ``classes`` (VOC only) overrides the
    class list. ``cache=True`` (used by the loaders) reuses an earlier read of the same (format,
    root, split, classes), so the train/valid/test loaders NNablaNAS builds from one config read
    annotations once; cached records are shared and must be treated as read-only.
    """
    if fmt not in FORMATS:
        raise DataError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "coco" and classes is not None:
        raise DataError("classes: a COCO data set takes its classes from the annotation file's 'categories'")
    if split is None:
        split = default_split(fmt, root, "test")
    key = _cache_key(fmt, root, split, classes)
    if cache:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    if fmt == "voc":
        from .voc import load_voc
        ds = load_voc(root, split, classes)
    else:
        from .coco import load_coco
        ds = load_coco(root, split)
    if cache:
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = ds
    return ds


def clear_cache():
    with _CACHE_LOCK:
        _CACHE.clear()
