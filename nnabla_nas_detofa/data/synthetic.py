"""``make-synthetic-voc``: a small shapes detection data set in the Pascal VOC layout.

Layout written under ``OUT``::

    OUT/classes.txt                                  circle, square, triangle, cross, ring
    OUT/VOCsynth/Annotations/<id>.xml                VOC XML (1-based integer xmin..xmax)
    OUT/VOCsynth/JPEGImages/<id>.jpg
    OUT/VOCsynth/ImageSets/Main/{train,val,trainval}.txt
    OUT/SYNTHETIC_COMPLETE                           marker: a complete data set made by this tool

so the splits are ``synth_train``, ``synth_val`` and ``synth_trainval``. Images have their longer
side equal to ``image_size`` and the other side drawn from ``[1 - aspect_jitter, 1] * image_size``
(so letterboxing is exercised like on VOC's 500x375 images). Each image has 1-``max_objects``
shapes of random class, size (``min_object_size``-``max_object_size`` of the shorter side, default
12-45 %), rotation and saturated colour, on a
textured background (low-frequency colour noise plus stripes or checks and pixel noise). Shapes
may overlap a little (IoU <= 0.25) and some are cut by the border (``truncated=1``, box clipped);
a shape less than half visible after occlusion is marked ``difficult=1``. The class is the shape,
never the colour, so a detector has to learn shapes.

``OUT`` must be a new or empty folder: the data set is built in a hidden folder beside it and
moved into place complete, marker included. ``overwrite`` replaces only a data set made here
(``OUT`` holding the marker and nothing but what this writes); a folder that holds anything else is
never written into.

Everything is drawn from ``numpy.random.default_rng([seed, image_index])``: the same seed gives
the same bytes (with the same OpenCV build), whatever the number of threads.
"""
import math
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import numpy as np

from ..schema import Int, Num, SchemaError, seed_spec, validate, workers_spec
from .records import DataError

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring")
TAG = "synth"
MAX_IOU = 0.25                 # overlap allowed between two objects' boxes
SIZE_RANGE = (0.12, 0.45)      # object box side / shorter image side
NOISE_AMPLITUDE = 28.0         # low-frequency background colour noise (0..255 units)
PATTERN_AMPLITUDE = (8.0, 18.0)
SUB = 16          # sub-pixel precision of polygon drawing (shift=4)


def _background(rng, w, h):
    import cv2  # imported on use: the CLI parser reads this module's options
    base = rng.uniform(50, 205, size=3)
    gh, gw = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    low = cv2.resize(rng.normal(0, 1, (gh, gw, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = base[None, None, :] + NOISE_AMPLITUDE * low
    pattern = int(rng.integers(0, 3))
    if pattern:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = rng.uniform(5, 18)
        if pattern == 1:   # stripes at a random angle
            t = rng.uniform(0, math.pi)
            wave = np.sin((xx * math.cos(t) + yy * math.sin(t)) * (2 * math.pi / period))
        else:              # checks
            wave = np.sign(np.sin(xx * (2 * math.pi / period)) * np.sin(yy * (2 * math.pi / period)))
        img += (rng.uniform(*PATTERN_AMPLITUDE) * wave)[..., None] * rng.uniform(0.5, 1.0, size=3)
    img += rng.normal(0, 5, (h, w, 3))
    return img


def _shape_mask(cls, rng, size, pad_w, pad_h, cx, cy):
    """A uint8 mask on a padded canvas; centre (cx, cy) and bbox side ``size`` in canvas pixels."""
    import cv2  # imported on use: the CLI parser reads this module's options
    mask = np.zeros((pad_h, pad_w), np.uint8)
    r = size / 2.0

    def poly(points):
        pts = np.round(np.asarray(points) * SUB).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_8, shift=4)

    def rotated(points, theta):
        c, s = math.cos(theta), math.sin(theta)
        pts = np.asarray(points, np.float64)
        return np.stack([cx + pts[:, 0] * c - pts[:, 1] * s, cy + pts[:, 0] * s + pts[:, 1] * c], 1)

    name = SHAPE_CLASSES[cls]
    if name in ("circle", "ring"):
        cv2.circle(mask, (int(round(cx * SUB)), int(round(cy * SUB))), int(round(r * SUB)), 255, -1,
                   lineType=cv2.LINE_8, shift=4)
        if name == "ring":
            inner = r * rng.uniform(0.45, 0.65)
            cv2.circle(mask, (int(round(cx * SUB)), int(round(cy * SUB))), int(round(inner * SUB)), 0, -1,
                       lineType=cv2.LINE_8, shift=4)
    elif name == "square":
        theta = rng.uniform(0, math.pi / 2)
        a = size / (abs(math.cos(theta)) + abs(math.sin(theta))) / 2
        poly(rotated([(-a, -a), (a, -a), (a, a), (-a, a)], theta))
    elif name == "triangle":
        theta = rng.uniform(0, 2 * math.pi)
        poly(rotated([(r * math.cos(k * 2 * math.pi / 3), r * math.sin(k * 2 * math.pi / 3)) for k in range(3)],
                     theta))
    elif name == "cross":
        theta = rng.uniform(0, math.pi / 2)
        b = r * rng.uniform(0.28, 0.4)
        a = (r - b * min(abs(math.cos(theta)), abs(math.sin(theta)))) / max(abs(math.cos(theta)),
                                                                          abs(math.sin(theta)))
        arm = [(-a, -b), (a, -b), (a, b), (-a, b)]
        poly(rotated(arm, theta))
        poly(rotated([(y, x) for x, y in arm], theta))
    return mask


def _colour(rng, bg_mean):
    import cv2  # imported on use: the CLI parser reads this module's options
    best, best_d = None, -1.0
    for _ in range(8):
        hsv = np.uint8([[[rng.integers(0, 180), rng.integers(130, 256), rng.integers(110, 256)]]])
        bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)
        d = float(np.abs(bgr - bg_mean).sum())
        if d > best_d:
            best, best_d = bgr, d
        if d > 150:
            break
    return best


def _iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def render(seed: int, index: int, image_size: int, max_objects: int = 4, aspect_jitter: float = 0.25,
           size_range: Tuple[float, float] = SIZE_RANGE) -> Tuple[np.ndarray, List[dict]]:
    """One BGR uint8 image and its objects (``name, xmin, ymin, xmax, ymax`` 1-based, ``truncated``,
    ``difficult``)."""
    rng = np.random.default_rng([seed, index])
    short = int(round(image_size * rng.uniform(1 - aspect_jitter, 1.0)))
    w, h = (image_size, short) if rng.random() < 0.7 else (short, image_size)
    img = _background(rng, w, h)
    pad = image_size
    pw, ph = w + 2 * pad, h + 2 * pad
    owner = np.full((h, w), -1, np.int32)     # which object each pixel shows
    objs = []
    n = int(rng.integers(1, max_objects + 1))
    for _ in range(n):
        for _attempt in range(20):
            cls = int(rng.integers(len(SHAPE_CLASSES)))
            size = rng.uniform(*size_range) * min(w, h)
            size = max(size, 10.0)
            margin = size / 2 * (0.3 if rng.random() < 0.15 else -1.0)   # some shapes cross the border
            cx = rng.uniform(-margin, w + margin) if margin > 0 else rng.uniform(size / 2, w - size / 2)
            cy = rng.uniform(-margin, h + margin) if margin > 0 else rng.uniform(size / 2, h - size / 2)
            full = _shape_mask(cls, rng, size, pw, ph, cx + pad, cy + pad)
            inside = full[pad:pad + h, pad:pad + w]
            n_full, n_in = int(np.count_nonzero(full)), int(np.count_nonzero(inside))
            if n_full == 0 or n_in < 0.6 * n_full:
                continue
            ys, xs = np.nonzero(inside)
            box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            if any(_iou(box, o["box"]) > MAX_IOU for o in objs):
                continue
            m = inside > 0
            colour = _colour(rng, img[m].mean(0))
            shade = rng.normal(0, 4, (int(m.sum()), 3))
            img[m] = colour[None, :] + shade
            owner[m] = len(objs)
            objs.append({"cls": cls, "box": box, "pixels": n_in, "truncated": n_in < n_full})
            break
    out = []
    for k, o in enumerate(objs):
        visible = int(np.count_nonzero(owner == k))
        x1, y1, x2, y2 = (int(v) for v in o["box"])
        out.append({"name": SHAPE_CLASSES[o["cls"]], "xmin": x1 + 1, "ymin": y1 + 1, "xmax": x2, "ymax": y2,
                    "truncated": int(o["truncated"]), "difficult": int(visible < 0.5 * o["pixels"])})
    return np.clip(np.round(img), 0, 255).astype(np.uint8), out


def voc_xml(image_id: str, width: int, height: int, objects: List[dict], folder: str = "VOC" + TAG) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = image_id + ".jpg"
    src = ET.SubElement(root, "source")
    ET.SubElement(src, "database").text = "nnabla-nas-detofa synthetic shapes"
    size = ET.SubElement(root, "size")
    for tag, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(v)
    ET.SubElement(root, "segmented").text = "0"
    for o in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = o["name"]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(o["truncated"])
        ET.SubElement(obj, "difficult").text = str(o["difficult"])
        bb = ET.SubElement(obj, "bndbox")
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            ET.SubElement(bb, tag).text = str(o[tag])
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="utf-8") + b"\n"


SYNTHETIC_OPTIONS = {  # make_synthetic_voc's options: the CLI flags and an experiment's "synthetic" object
    "num_train": Int(1, 1_000_000, default=256), "num_val": Int(0, 1_000_000, default=64),
    "image_size": Int(32, 4096, default=128), "seed": seed_spec(),
    "max_objects": Int(1, 64, default=4), "aspect_jitter": Num(0, 1, hi_open=True, default=0.25),
    "jpeg_quality": Int(1, 100, default=90), "workers": workers_spec(),
    "min_object_size": Num(0, 1, lo_open=True, default=SIZE_RANGE[0]),   # object box side / shorter image side
    "max_object_size": Num(0, 1, lo_open=True, default=SIZE_RANGE[1]),
}
SYNTHETIC_MARKER = "SYNTHETIC_COMPLETE"    # written last: the folder holds a complete data set made here
OWN_ENTRIES = ("VOC" + TAG, "classes.txt", SYNTHETIC_MARKER)   # everything make_synthetic_voc writes in OUT


def check_synthetic_options(spec: dict, where: str = "synthetic") -> dict:
    """The options of an experiment's ``"synthetic"`` object (``make_synthetic_voc`` arguments) with
    defaults filled in; SchemaError (a ValueError) naming the option on an unknown key, a wrong
    type or an out-of-range value."""
    opts = validate(spec, SYNTHETIC_OPTIONS, where)
    if not opts["min_object_size"] < opts["max_object_size"]:
        raise SchemaError(f"{where}.min_object_size={opts['min_object_size']:g} must be below "
                          f"max_object_size={opts['max_object_size']:g}")
    return opts


def synthetic_state(out: str) -> str:
    """What ``out`` is: ``"absent"``, ``"empty"`` (a folder without entries), ``"ours"`` (a complete
    data set made by ``make_synthetic_voc`` and nothing else), ``"foreign"`` (a folder that holds
    anything else, or a partial data set), or ``"file"``."""
    if not os.path.lexists(out):
        return "absent"
    if not os.path.isdir(out) or os.path.islink(out):
        return "file" if not os.path.isdir(out) else "foreign"
    entries = set(os.listdir(out))
    if not entries:
        return "empty"
    if SYNTHETIC_MARKER in entries and entries <= set(OWN_ENTRIES):
        return "ours"
    return "foreign"


def _refuse(out: str, state: str, overwrite: bool) -> None:
    if state == "file":
        raise DataError(f"{out}: exists and is not a folder")
    if state == "foreign":
        others = sorted(set(os.listdir(out)) - set(OWN_ENTRIES)) if os.path.isdir(out) else []
        what = f"holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}" if others else \
            f"holds a data set without its {SYNTHETIC_MARKER} marker"
        raise DataError(f"{out}: the folder {what}; make-synthetic-voc only writes into a new or empty folder "
                        f"(or replaces, with --overwrite, a data set it made there)")
    if state == "ours" and not overwrite:
        raise DataError(f"{out}: already holds a synthetic data set (use --overwrite to replace it)")


def make_synthetic_voc(out: str, num_train: int = 256, num_val: int = 64, image_size: int = 128, seed: int = 0,
                       max_objects: int = 4, aspect_jitter: float = 0.25, jpeg_quality: int = 90,
                       overwrite: bool = False, workers: int = 4, min_object_size: float = SIZE_RANGE[0],
                       max_object_size: float = SIZE_RANGE[1]) -> dict:
    """Write the data set; returns a summary (counts per split and class).

    ``out`` must be a new or empty folder, or (with ``overwrite``) hold a data set made here and
    nothing else: this never writes into a folder that holds anything else. The data set is built
    in a hidden temporary folder beside ``out`` and moved into place complete, with the
    ``SYNTHETIC_COMPLETE`` marker, so a killed run leaves no half data set behind."""
    try:
        opts = check_synthetic_options(
            {"num_train": num_train, "num_val": num_val, "image_size": image_size, "seed": seed,
             "max_objects": max_objects, "aspect_jitter": aspect_jitter, "jpeg_quality": jpeg_quality,
             "workers": workers, "min_object_size": min_object_size, "max_object_size": max_object_size},
            "make_synthetic_voc")
    except SchemaError as err:
        raise DataError(str(err)) from None
    out = os.fspath(out)
    _refuse(out, synthetic_state(out), overwrite)
    parent = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out))}.partial-", dir=parent)
    except OSError as err:
        raise DataError(f"{out}: cannot write ({err.strerror or err})") from None
    try:
        summary = _write(tmp, **opts)
        _commit(tmp, out, overwrite)
    except OSError as err:
        raise DataError(f"{out}: cannot write ({err.strerror or err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary["root"] = out
    return summary


def _commit(tmp: str, out: str, overwrite: bool) -> None:
    """Move the finished data set ``tmp`` to ``out`` (checked again: the folder may have changed)."""
    state = synthetic_state(out)
    _refuse(out, state, overwrite)
    if state == "empty":
        os.rmdir(out)
    if state == "ours":
        old = tmp + ".old"
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    os.rename(tmp, out)


def _write(out: str, num_train: int, num_val: int, image_size: int, seed: int, max_objects: int,
           aspect_jitter: float, jpeg_quality: int, workers: int, min_object_size: float,
           max_object_size: float) -> dict:
    import cv2

    year = os.path.join(out, "VOC" + TAG)
    dirs = {k: os.path.join(year, *k.split("/")) for k in ("Annotations", "JPEGImages", "ImageSets/Main")}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(out, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("# class list of the synthetic shapes data set (index order)\n")
        f.write("\n".join(SHAPE_CLASSES) + "\n")

    total = num_train + num_val
    ids = [f"{i:06d}" for i in range(total)]

    def one(i):
        img, objs = render(seed, i, image_size, max_objects, aspect_jitter, (min_object_size, max_object_size))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if not ok:
            raise DataError(f"cannot encode image {ids[i]}")
        with open(os.path.join(dirs["JPEGImages"], ids[i] + ".jpg"), "wb") as f:
            f.write(buf.tobytes())
        with open(os.path.join(dirs["Annotations"], ids[i] + ".xml"), "wb") as f:
            f.write(voc_xml(ids[i], img.shape[1], img.shape[0], objs))
        return objs

    with ThreadPoolExecutor(max(1, workers)) as pool:
        all_objs = list(pool.map(one, range(total)))
    sets = {"train": ids[:num_train], "val": ids[num_train:], "trainval": ids}
    for name, members in sets.items():
        with open(os.path.join(dirs["ImageSets/Main"], name + ".txt"), "w", encoding="utf-8") as f:
            f.write("".join(i + "\n" for i in members))
    with open(os.path.join(out, SYNTHETIC_MARKER), "w", encoding="utf-8") as f:
        f.write("ok\n")
    summary = {"root": out, "splits": {}, "classes": list(SHAPE_CLASSES)}
    for name, lo, hi in (("train", 0, num_train), ("val", num_train, total)):
        per = {c: 0 for c in SHAPE_CLASSES}
        for objs in all_objs[lo:hi]:
            for o in objs:
                per[o["name"]] += 1
        summary["splits"][f"{TAG}_{name}"] = {"images": hi - lo, "objects": per}
    return summary
