"""``check-data``: read every annotation and image of a data set and list what is wrong, file by file.

Problems reported (all count as errors; the exit status is non-zero when there is any): an
image set or class list that cannot be read or is not UTF-8, an image set that lists no image,
malformed XML/JSON, an XML root element other than ``<annotation>``, a ``<size>`` field that is
not an integer, a missing annotation or image file, an image file that is empty, truncated (no
JPEG end marker / PNG end chunk) or cannot be decoded, an image whose size differs from its
annotation, an object without name/bndbox or with a missing or non-numeric coordinate, an
unknown class, COCO entries that pycocotools cannot score (an annotation without a valid unique
``id``, a bad ``area`` or ``iscrowd``), COCO entries naming unknown images or categories,
degenerate boxes (no width or height) and boxes leaving the image. Empty images (no objects)
are counted, not reported; fields the reader fills in (a COCO annotation without ``area`` or
``iscrowd``) are listed as notes, not errors.

Without a split, every split of the data set is checked (VOC: each ``ImageSets/Main/<set>.txt``
of each year folder, an image listed in several sets checked once; COCO: each
``annotations/instances_*.json``).

``verify_images(records, workers)`` is the check of the image files alone (exists, header
readable, size as annotated, not truncated) without decoding them: the launcher runs it on every
image of a run before step 0 (thousands of images per second).
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import cv2

from . import coco as coco_mod
from . import voc as voc_mod
from .dataset import parse_spec
from .images import ImageError, probe_image
from .records import DataError, ImageRecord, Problem


@dataclass
class CheckReport:
    dataset: str
    splits: List[str]
    class_names: List[str] = field(default_factory=list)
    images: int = 0
    empty_images: int = 0
    objects: int = 0
    difficult: int = 0
    crowd: int = 0
    per_class: Dict[str, int] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)     # what the readers filled in (not errors)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add_record(self, rec: ImageRecord):
        self.images += 1
        n = rec.num_objects
        self.objects += n
        self.empty_images += int(n == 0)
        self.difficult += int(rec.difficult.sum())
        self.crowd += int(rec.crowd.sum())
        for lab in rec.labels.tolist():
            name = self.class_names[lab]
            self.per_class[name] = self.per_class.get(name, 0) + 1

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "splits": self.splits, "images": self.images,
                "empty_images": self.empty_images, "objects": self.objects, "difficult": self.difficult,
                "crowd": self.crowd, "per_class": {c: self.per_class.get(c, 0) for c in self.class_names},
                "problems": [{"where": p.where, "message": p.message} for p in self.problems],
                "notes": list(self.notes), "ok": self.ok}

    def to_text(self) -> str:
        lines = [f"data set: {self.dataset}", f"splits: {', '.join(self.splits)}",
                 f"images: {self.images} (empty: {self.empty_images})",
                 f"objects: {self.objects} (difficult: {self.difficult}, crowd: {self.crowd})", "per class:"]
        w = max([len(c) for c in self.class_names] + [1])
        lines += [f"  {c:<{w}}  {self.per_class.get(c, 0)}" for c in self.class_names]
        lines.append(f"problems: {len(self.problems)}")
        lines += [f"  {p}" for p in self.problems]
        if self.notes:
            lines.append(f"notes: {len(self.notes)}")
            lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


def _verify_one(rec: ImageRecord, decode: bool = False) -> Optional[Problem]:
    try:
        w, h = probe_image(rec.image_path)
    except ImageError as err:
        return Problem("fatal", rec.image_path, str(err))
    if rec.width > 0 and rec.height > 0 and (w != rec.width or h != rec.height):
        return Problem("fatal", rec.image_path, f"image is {w}x{h} but {rec.source or 'its annotation'} says "
                                                f"{rec.width}x{rec.height}")
    if decode:
        img = cv2.imread(rec.image_path, cv2.IMREAD_COLOR)
        if img is None:
            return Problem("fatal", rec.image_path, "cannot decode image")
        if img.shape[1] != w or img.shape[0] != h:
            return Problem("fatal", rec.image_path, f"decodes to {img.shape[1]}x{img.shape[0]} but its header "
                                                    f"says {w}x{h}")
    return None


def verify_images(records: Sequence[ImageRecord], workers: int = 4, decode: bool = False) -> List[Problem]:
    """One problem per unusable image file, in record order (each file and size checked once): missing,
    unreadable, empty, not an image, truncated, or of another size than its record says
    (``images.probe_image``; no decoding unless ``decode``)."""
    seen, todo = set(), []
    for r in records:
        key = (r.image_path, r.width, r.height)      # a file named twice with two sizes: both checked
        if key not in seen:
            seen.add(key)
            todo.append(r)
    if not todo:
        return []
    if workers <= 1 or len(todo) < 64:
        found = [_verify_one(r, decode) for r in todo]
    else:
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(lambda r: _verify_one(r, decode), todo, chunksize=64))
    return [p for p in found if p is not None]


def _problem_of(err: Exception) -> Problem:
    where, sep, message = str(err).partition(": ")
    return Problem("fatal", where, message) if sep else Problem("fatal", "data", where)


def check_voc(root: str, split: Optional[str] = None, classes=None, decode_images: bool = True,
              workers: int = 4) -> CheckReport:
    splits = [split] if split else voc_mod.available_splits(root)
    if not splits:
        raise DataError(f"{root}: no VOC split found (expected VOC<year>/ImageSets/Main/<set>.txt)")
    names = voc_mod.voc_classes(root, classes)
    index = {n: i for i, n in enumerate(names)}
    report = CheckReport(f"voc:{root}", splits, list(names))
    seen = set()
    entries = []
    for s in splits:
        voc_mod.split_files(root, s)      # a split that is not there: nothing to check (DataError)
        try:
            found = voc_mod.split_entries(root, s)
        except DataError as err:          # an image set that cannot be read, lists nothing, ...
            report.problems.append(_problem_of(err))
            continue
        for image_id, xml_path, image_dir in found:
            if xml_path not in seen:
                seen.add(xml_path)
                entries.append((image_id, xml_path, image_dir))

    def one(entry):
        image_id, xml_path, image_dir = entry
        rec, problems = voc_mod.parse_voc_xml(xml_path, image_id, image_dir, index)
        if rec is not None:
            p = _verify_one(rec, decode_images)
            if p is not None:
                problems.append(p)
        return rec, problems

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for rec, problems in pool.map(one, entries):     # in split order: problems grouped per image
            report.problems.extend(problems)
            if rec is None:
                report.images += 1
            else:
                report.add_record(rec)
    return report


def check_coco(root: str, split: Optional[str] = None, decode_images: bool = True, workers: int = 4) -> CheckReport:
    splits = [split] if split else coco_mod.available_splits(root)
    if not splits:
        raise DataError(f"{root}: no COCO split found (expected annotations/instances_<split>.json)")
    report = CheckReport(f"coco:{root}", splits)
    for s in splits:
        path = coco_mod.annotation_path(root, s)
        try:
            data = coco_mod.read_coco_json(path, coco_mod.available_splits(root))
        except DataError as err:
            report.problems.append(Problem("fatal", path, str(err).split(": ", 1)[-1]))
            continue
        names, _, records, problems, notes = coco_mod.parse_coco(data, path, coco_mod.image_dir(root, s), True)
        if not report.class_names:
            report.class_names = list(names)
        report.problems.extend(problems)
        report.notes.extend(notes)
        missing = sum(1 for p in problems if "image file is missing" in p.message)
        report.images += missing
        for rec in records:
            report.add_record(rec)
        report.problems.extend(verify_images(records, workers, decode=decode_images))
    return report


def check_dataset(spec: str, split: Optional[str] = None, decode_images: bool = True, workers: int = 4,
                  classes=None) -> CheckReport:
    """``check_dataset("voc:PATH")`` / ``("coco:PATH", "val2017")``; raises ``DataError`` only when
    nothing can be checked (no such folder or split)."""
    fmt, root = parse_spec(spec)
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such directory")
    if fmt == "voc":
        return check_voc(root, split, classes, decode_images=decode_images, workers=workers)
    if classes is not None:
        raise DataError("classes: a COCO data set takes its classes from the annotation file's 'categories'")
    return check_coco(root, split, decode_images=decode_images, workers=workers)
