"""One front door to both formats: ``open_dataset("voc:PATH", split)`` / ``open_dataset("coco:PATH")``."""
import os
import threading
from typing import List, Optional, Sequence, Tuple

from . import coco, voc
from .records import DataError, DetectionDataset

FORMATS = ("voc", "coco")
DEFAULT_SPLITS = {
    # purpose -> format -> split
    "train": {"voc": "2007_trainval+2012_trainval", "coco": "train2017"},
    "test": {"voc": "2007_test", "coco": "val2017"},
}


def parse_spec(spec: str) -> Tuple[str, str]:
    """``"voc:PATH"`` -> ``("voc", PATH)``."""
    fmt, sep, path = str(spec).partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise DataError(f"dataset {spec!r}: expected voc:PATH or coco:PATH")
    return fmt, path


def available_splits(fmt: str, root: str) -> List[str]:
    return (voc if fmt == "voc" else coco).available_splits(root)


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


def check_split(fmt: str, root: str, split: str) -> None:
    """``DataError`` (naming the split and what is there) when ``split`` does not exist in ``root``."""
    if fmt == "voc":
        voc.split_files(root, split)
        return
    path = coco.annotation_path(root, split)
    if not os.path.isfile(path):
        avail = coco.available_splits(root)
        raise DataError(f"{path}: annotation file is missing (available splits: {', '.join(avail) or 'none'})")


_CACHE = {}
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _cache_key(fmt, root, split, classes, check_images):
    files = []
    if fmt == "coco":
        files.append(coco.annotation_path(root, split))
    try:
        stamp = tuple(os.stat(f).st_mtime_ns for f in files)
    except OSError:
        stamp = None
    cls = None if classes is None else (classes if isinstance(classes, str) else tuple(classes))
    return fmt, os.path.abspath(root), split, cls, stamp, bool(check_images)


def open_dataset(spec: str, split: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 cache: bool = False, check_images: bool = True) -> DetectionDataset:
    """``open_dataset("voc:data/VOCdevkit", "2007_test")``: see ``load_dataset``."""
    fmt, root = parse_spec(spec)
    return load_dataset(fmt, root, split, classes, cache, check_images)


def load_dataset(fmt: str, root: str, split: Optional[str] = None, classes: Optional[Sequence[str]] = None,
                 cache: bool = False, check_images: bool = True) -> DetectionDataset:
    """Read a split of a VOC- (``fmt="voc"``) or COCO-layout (``"coco"``) data set.

    ``split=None`` takes ``default_split(fmt, root, "test")``. ``classes`` (VOC only) overrides the
    class list. ``cache=True`` (used by the loaders) reuses an earlier read of the same (format,
    root, split, classes), so the train/valid/test loaders NNablaNAS builds from one config read
    annotations once; cached records are shared and must be treated as read-only.
    ``check_images=False`` reads the annotations alone (image files need not exist: scoring a
    detections file needs no image).
    """
    if fmt not in FORMATS:
        raise DataError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "coco" and classes is not None:
        raise DataError("classes: a COCO data set takes its classes from the annotation file's 'categories'")
    if split is None:
        split = default_split(fmt, root, "test")
    key = _cache_key(fmt, root, split, classes, check_images)
    if cache:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
    ds = voc.load_voc(root, split, classes, check_images) if fmt == "voc" else \
        coco.load_coco(root, split, check_images)
    if cache:
        with _CACHE_LOCK:
            if len(_CACHE) >= _CACHE_SIZE:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = ds
    return ds
