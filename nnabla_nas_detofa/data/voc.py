"""Pascal VOC reader: ``ROOT/VOC<tag>/{Annotations, JPEGImages, ImageSets/Main}``.

* Splits are written ``<tag>_<set>`` and joined with ``+``: ``"2007_trainval+2012_trainval"``
  reads ``ROOT/VOC2007/ImageSets/Main/trainval.txt`` and ``ROOT/VOC2012/ImageSets/Main/trainval.txt``.
  ``<tag>`` is whatever follows ``VOC`` in the folder name (``2007``, ``2012``, ``synth``). A split
  without ``_`` (``"trainval"``) reads ``ROOT/ImageSets/Main/trainval.txt`` when ``ROOT`` is itself a
  year folder, or the only ``VOC*`` folder under ``ROOT``.
* Image ids are the file stems listed in the split files; they must be unique over the years of
  one split (they are the ``image_id`` of detection files).
* Classes: an explicit list wins; else ``ROOT/classes.txt`` (one name per line in class-index
  order, blank lines and ``#`` comments ignored; written by ``make-synthetic-voc``); else the 20
  VOC classes (``VOC_CLASSES``).
* Coordinates: VOC's 1-based inclusive ``xmin, ymin, xmax, ymax`` become 0-based pixel-edge
  ``x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax`` (so a box over the whole W x H image is
  ``[0, 0, W, H]`` and IoUs equal the VOC devkit's ``+1`` formula). Float coordinates are accepted.
* Tolerated: float coordinates, empty or missing ``<difficult/>``/``<truncated/>``, missing
  optional fields, a missing/zero ``<size>`` (then read from the image header), an image named by
  ``<filename>`` or with another extension when ``JPEGImages/<id>.jpg`` is absent.
* Fatal (``DataError`` naming file and field): a class list or image set file that cannot be
  read or is not UTF-8, an image set that lists no image, malformed XML, a root element other
  than ``<annotation>``, a ``<size>`` field that is not a non-negative integer, a missing
  annotation or image file (image files may be absent with ``check_images=False``, as when
  scoring a detections file), an object without ``<name>``/``<bndbox>`` or with a missing or
  non-numeric coordinate, an unknown class name.
"""
import math
import os
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

from ..reading import read_lines
from .images import probe_image
from .records import (MAX_COORD, DataError, DetectionDataset, ImageRecord, Problem, box_problems, make_record,
                      raise_fatal)

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
CLASS_FILE = "classes.txt"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp")


# --- class lists --------------------------------------------------------------------------------
def read_class_file(path: str) -> Tuple[str, ...]:
    lines = read_lines(path, DataError, "class list")
    names = [ln.strip() for ln in lines]
    names = [n for n in names if n and not n.startswith("#")]
    return check_class_names(names, path)


def check_class_names(names: Sequence[str], where: str) -> Tuple[str, ...]:
    names = tuple(names)
    if not names:
        raise DataError(f"{where}: the class list is empty")
    for n in names:
        if not isinstance(n, str) or not n.strip():
            raise DataError(f"{where}: class name {n!r} is not a non-empty string")
    seen = set()
    for n in names:
        if n in seen:
            raise DataError(f"{where}: class {n!r} is listed twice")
        seen.add(n)
    return names


def voc_classes(root: str, classes: Optional[Sequence[str]] = None) -> Tuple[str, ...]:
    """The class list of a VOC-layout data set (explicit > ROOT/classes.txt > VOC_CLASSES)."""
    if classes is not None:
        if isinstance(classes, str):
            return read_class_file(classes)
        return check_class_names(classes, "classes")
    path = os.path.join(root, CLASS_FILE)
    if os.path.isfile(path):
        return read_class_file(path)
    return VOC_CLASSES


# --- splits -------------------------------------------------------------------------------------
def year_dirs(root: str) -> Dict[str, str]:
    """``{tag: folder}`` for every ``ROOT/VOC<tag>`` folder."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such directory")
    out = {}
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if name.startswith("VOC") and len(name) > 3 and os.path.isdir(p):
            out[name[3:]] = p
    return out


def _is_year_dir(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "Annotations"))


def available_splits(root: str) -> List[str]:
    """Splits that can be named (``<tag>_<set>`` for each ``ImageSets/Main/<set>.txt`` without ``_``)."""
    out = []
    dirs = year_dirs(root)
    if _is_year_dir(root):
        dirs = {"": root}
    for tag, d in dirs.items():
        main = os.path.join(d, "ImageSets", "Main")
        if not os.path.isdir(main):
            continue
        for f in sorted(os.listdir(main)):
            if f.endswith(".txt") and "_" not in f[:-4]:
                out.append(f"{tag}_{f[:-4]}" if tag else f[:-4])
    return out


def parse_split(root: str, split: str) -> List[Tuple[str, str, str]]:
    """``[(tag, set_name, year_folder)]`` for a split spec like ``"2007_trainval+2012_trainval"``."""
    if not isinstance(split, str) or not split.strip():
        raise DataError(f"split {split!r}: expected e.g. '2007_trainval' or '2007_trainval+2012_trainval'")
    out = []
    for item in split.split("+"):
        item = item.strip()
        tag, sep, set_name = item.partition("_")
        if not sep:
            set_name = item
            if _is_year_dir(root):
                out.append(("", set_name, root))
                continue
            dirs = year_dirs(root)
            if len(dirs) != 1:
                raise DataError(f"split {item!r}: name the year as <tag>_{item} "
                                f"(available: {', '.join(available_splits(root)) or 'none'})")
            tag, folder = next(iter(dirs.items()))
            out.append((tag, set_name, folder))
            continue
        if not tag or not set_name:
            raise DataError(f"split {item!r}: expected <tag>_<set>, e.g. 2007_trainval")
        folder = os.path.join(root, "VOC" + tag)
        if not os.path.isdir(folder):
            raise DataError(f"split {item!r}: {folder} is not a directory "
                            f"(available splits: {', '.join(available_splits(root)) or 'none'})")
        out.append((tag, set_name, folder))
    return out


def read_image_set(path: str) -> List[str]:
    """Image ids of an ``ImageSets/Main/*.txt`` file (first token of each non-empty line); a file
    that lists no image is an error."""
    ids = []
    for n, ln in enumerate(read_lines(path, DataError, "image set"), 1):
        if ln.strip():
            image_id = ln.split()[0]
            if "/" in image_id or "\\" in image_id or image_id in (".", ".."):
                raise DataError(f"{path}:{n}: image id {image_id!r} is a path, not a file stem")
            ids.append(image_id)
    if not ids:
        raise DataError(f"{path}: the image set lists no image")
    return ids


# --- annotations --------------------------------------------------------------------------------
def _text(elem, tag) -> Optional[str]:
    child = elem.find(tag)
    if child is None or child.text is None:
        return None
    t = child.text.strip()
    return t or None


def _flag(elem, tag, where, problems) -> bool:
    t = _text(elem, tag)
    if t is None:
        return False
    low = t.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    try:
        return float(t) != 0
    except ValueError:
        problems.append(Problem("fatal", where, f"<{tag}> is {t!r}, expected 0 or 1"))
        return False


def find_image(image_dir: str, image_id: str, filename: Optional[str] = None) -> Optional[str]:
    p = os.path.join(image_dir, image_id + ".jpg")
    if os.path.isfile(p):
        return p
    if filename:
        p = os.path.join(image_dir, os.path.basename(filename))
        if os.path.isfile(p):
            return p
    for ext in IMAGE_EXTS:
        p = os.path.join(image_dir, image_id + ext)
        if os.path.isfile(p):
            return p
    return None


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) as the loader will decode it (``images.probe_image``); raises OSError."""
    return probe_image(path)


def _size_field(size, tag, where, problems) -> int:
    """``<size><width>`` / ``<height>``: 0 when absent or 0 (then read from the image), else a
    positive integer; anything else is a fatal problem."""
    t = _text(size, tag)
    if t is None:
        return 0
    try:
        v = float(t)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v) or v < 0 or v != int(v):
        problems.append(Problem("fatal", where, f"<size><{tag}> is {t!r}, expected a non-negative integer"))
        return 0
    return int(v)


def parse_voc_xml(xml_path: str, image_id: str, image_dir: str, class_index: Dict[str, int],
                  check_images: bool = True) -> Tuple[Optional[ImageRecord], List[Problem]]:
    """Read one annotation file. Returns the record (``None`` when unusable) and all problems.
    ``check_images=False`` (scoring detections needs the annotations alone): a missing image file
    is no problem; the image size then comes from ``<size>`` only (0 x 0 when it is not there)."""
    problems: List[Problem] = []
    if not os.path.isfile(xml_path):
        return None, [Problem("fatal", xml_path, "annotation file is missing")]
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        return None, [Problem("fatal", xml_path, f"malformed XML ({err})")]
    except OSError as err:
        return None, [Problem("fatal", xml_path, f"cannot read ({err.strerror})")]
    if root.tag != "annotation":
        return None, [Problem("fatal", xml_path, f"root element is <{root.tag}>, expected <annotation>")]

    image_path = find_image(image_dir, image_id, _text(root, "filename"))
    if image_path is None and check_images:
        problems.append(Problem("fatal", xml_path, f"image file is missing: "
                                                   f"{os.path.join(image_dir, image_id + '.jpg')}"))
    width = height = 0
    size = root.find("size")
    if size is not None:
        width = _size_field(size, "width", xml_path, problems)
        height = _size_field(size, "height", xml_path, problems)
    if (width <= 0 or height <= 0) and image_path is not None and not problems:
        try:
            width, height = image_size(image_path)
        except OSError as err:
            problems.append(Problem("fatal", image_path, f"<size> missing in {xml_path} and {err}"))
    if image_path is None:
        image_path = os.path.join(image_dir, image_id + ".jpg")

    boxes, labels, difficult = [], [], []
    for k, obj in enumerate(root.findall("object"), 1):
        name = _text(obj, "name")
        where = f"{xml_path}: object {k}" + (f" ({name})" if name else "")
        if name is None:
            problems.append(Problem("fatal", where, "<name> is missing"))
            continue
        if name not in class_index:
            problems.append(Problem("fatal", where, f"unknown class {name!r} "
                                                    f"(known: {', '.join(class_index)})"))
            continue
        bb = obj.find("bndbox")
        if bb is None:
            problems.append(Problem("fatal", where, "<bndbox> is missing"))
            continue
        coords = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            t = _text(bb, tag)
            if t is None:
                problems.append(Problem("fatal", where, f"bndbox <{tag}> is missing"))
                break
            try:
                v = float(t)
            except ValueError:
                problems.append(Problem("fatal", where, f"bndbox <{tag}> is {t!r}, not a number"))
                break
            if not math.isfinite(v) or abs(v) > MAX_COORD:
                problems.append(Problem("fatal", where, f"bndbox <{tag}> is {t!r}, not a finite number "
                                                        f"(of at most {MAX_COORD:g} in size)"))
                break
            coords.append(v)
        if len(coords) != 4:
            continue
        xmin, ymin, xmax, ymax = coords
        boxes.append((xmin - 1.0, ymin - 1.0, xmax, ymax))
        labels.append(class_index[name])
        difficult.append(_flag(obj, "difficult", where, problems))
        _flag(obj, "truncated", where, problems)

    if any(p.kind == "fatal" for p in problems):
        return None, problems
    rec = make_record(image_id, image_path, width, height, boxes, labels, difficult, source=xml_path)
    if width > 0 and height > 0:     # unknown size (no <size>, no image, check_images=False): no box check
        for i, msg in box_problems(rec.boxes, width, height):
            problems.append(Problem("box", f"{xml_path}: object {i + 1}", msg))
    return rec, problems


def split_files(root: str, split: str) -> List[Tuple[str, str]]:
    """``[(year_folder, image_set_file)]`` of a split; ``DataError`` when a file is not there."""
    out = []
    for tag, set_name, folder in parse_split(root, split):
        set_file = os.path.join(folder, "ImageSets", "Main", set_name + ".txt")
        if not os.path.isfile(set_file):
            item = f"{tag}_{set_name}" if tag else set_name
            raise DataError(f"split {item!r}: {set_file}: image set file is missing "
                            f"(available splits: {', '.join(available_splits(root)) or 'none'})")
        out.append((folder, set_file))
    return out


def split_entries(root: str, split: str) -> List[Tuple[str, str, str]]:
    """``[(image_id, xml_path, image_dir)]`` for a split, in split-file order; ids must be unique."""
    out, seen = [], {}
    for folder, set_file in split_files(root, split):
        for image_id in read_image_set(set_file):
            if image_id in seen:
                raise DataError(f"{set_file}: image id {image_id!r} also listed in {seen[image_id]} "
                                f"(ids must be unique within a split)")
            seen[image_id] = set_file
            out.append((image_id, os.path.join(folder, "Annotations", image_id + ".xml"),
                        os.path.join(folder, "JPEGImages")))
    return out


def load_voc(root: str, split: str, classes: Optional[Sequence[str]] = None, check_images: bool = True):
    """Read a split; raises ``DataError`` on the first fatal problem. Returns a ``DetectionDataset``.
    ``check_images=False``: image files need not exist (see ``parse_voc_xml``)."""
    names = voc_classes(root, classes)
    index = {n: i for i, n in enumerate(names)}
    records, soft = [], []
    for image_id, xml_path, image_dir in split_entries(root, split):
        rec, problems = parse_voc_xml(xml_path, image_id, image_dir, index, check_images)
        raise_fatal(problems)
        soft.extend(problems)
        records.append(rec)
    return DetectionDataset(format="voc", root=root, split=split, class_names=names, records=records,
                            problems=soft)
