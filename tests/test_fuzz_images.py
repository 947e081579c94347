"""Fuzz: image files cut short or corrupted, through the header probe, ``verify_images`` and check-data.

OpenCV returns an image for a JPEG cut anywhere after its header (the missing part grey), so the
probe looks for the end marker; every cut must be found, every intact file must give the size
``cv2.imread`` gives (EXIF orientation included), and a corrupted header must be an ``ImageError``,
never another exception.
"""
import os
import random
import struct

import cv2
import numpy as np
import pytest
from fuzz_cases import call

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data.check import verify_images
from nnabla_nas_detofa.data.images import ImageError, probe_image
from nnabla_nas_detofa.data.records import make_record


def picture(w=61, h=47, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (5, 5), 0)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    img = picture()
    out = {}
    for ext, params in ((".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]), (".png", []), (".bmp", []),
                        ("-progressive.jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])):
        p = str(d / ("a" + ext))
        assert cv2.imwrite(p, img, params)
        out[ext] = p
    return d, out


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHI", 0x0112, 3, 1) + \
        struct.pack(">HH", orientation, 0) + b"\x00\x00\x00\x00"
    exif = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:]


def test_intact_images_have_the_size_opencv_decodes(images, tmp_path):
    _, files = images
    for p in files.values():
        assert probe_image(p) == (61, 47), p
    raw = open(files[".jpg"], "rb").read()
    for orientation in range(1, 9):
        p = tmp_path / f"o{orientation}.jpg"
        p.write_bytes(with_exif_orientation(raw, orientation))
        h, w = cv2.imread(str(p)).shape[:2]
        assert probe_image(str(p)) == (w, h), orientation
    p = tmp_path / "tail.jpg"
    p.write_bytes(raw + b"\x00" * 10000 + b"trailing data of a camera")     # bytes after the end marker
    assert probe_image(str(p)) == (61, 47)


@pytest.mark.parametrize("ext", [".jpg", ".png", "-progressive.jpg"])
def test_every_cut_is_found(images, tmp_path, ext):
    _, files = images
    raw = open(files[ext], "rb").read()
    p = str(tmp_path / ("cut" + ext[-4:]))
    cuts = sorted(set(list(range(0, 40)) + list(range(40, len(raw), max(1, len(raw) // 150)))))
    for cut in cuts:
        with open(p, "wb") as f:
            f.write(raw[:cut])
        with pytest.raises(ImageError):
            probe_image(p)
    assert len(cuts) > 100


def test_byte_flips_never_escape_as_another_error(images, tmp_path):
    _, files = images
    rng = random.Random(0)
    n = 0
    for ext in (".jpg", ".png", ".bmp"):
        raw = open(files[ext], "rb").read()
        p = str(tmp_path / ("flip" + ext))
        for _ in range(60):
            b = bytearray(raw)
            for _ in range(rng.randint(1, 3)):
                k = rng.randrange(min(len(b), 700))      # the header region
                b[k] = rng.randrange(256)
            with open(p, "wb") as f:
                f.write(bytes(b))
            try:
                w, h = probe_image(p)
                assert w > 0 and h > 0
            except ImageError as err:
                assert str(err) and "\n" not in str(err)
            n += 1
    for raw in (b"", b"\xff", b"\xff\xd8", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"not an image"):
        with open(p, "wb") as f:
            f.write(raw)
        with pytest.raises(ImageError):
            probe_image(p)
    with pytest.raises(ImageError, match="missing"):
        probe_image(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageError, match="cannot read"):
        probe_image(str(tmp_path))
    assert n == 180


def test_verify_images_lists_each_bad_file_once_in_order(images, tmp_path):
    d, files = images
    good = files[".jpg"]
    cut = str(tmp_path / "cut.jpg")
    raw = open(good, "rb").read()
    with open(cut, "wb") as f:
        f.write(raw[: len(raw) - 5])
    recs = [make_record("g", good, 61, 47, [], []), make_record("c", cut, 61, 47, [], []),
            make_record("s", good, 60, 47, [], [], source="x.xml"),
            make_record("m", str(tmp_path / "m.jpg"), 4, 4, [], []), make_record("c2", cut, 61, 47, [], [])]
    for workers in (1, 4):
        probs = verify_images(recs * 20, workers=workers)
        assert [p.where for p in probs] == [cut, good, str(tmp_path / "m.jpg")], probs
        assert "truncated" in probs[0].message and "image is 61x47 but x.xml says 60x47" in probs[1].message
        assert "missing" in probs[2].message
    assert verify_images([], 4) == []


def test_check_data_finds_truncated_and_empty_images_without_decoding(tmp_path):
    from test_data_fixtures import voc_object, write_voc
    root = str(tmp_path)
    base = write_voc(root, "2007", {i: (40, 30, [voc_object("dog", (1, 1, 9, 9))]) for i in ("a", "b", "c", "d")},
                     {"trainval": ["a", "b", "c", "d"]})
    jpg = os.path.join(base, "JPEGImages")
    raw = open(os.path.join(jpg, "b.jpg"), "rb").read()
    open(os.path.join(jpg, "b.jpg"), "wb").write(raw[: len(raw) * 2 // 3])
    open(os.path.join(jpg, "c.jpg"), "wb").write(b"")
    cv2.imwrite(os.path.join(jpg, "d.jpg"), picture(30, 40))           # rotated: 30x40 for a 40x30 annotation
    for extra in ([], ["--no-decode"]):
        o = call(main_tools, ["check-data", f"voc:{root}", "--split", "2007_trainval", *extra])
        assert o.rc == 1 and len(o.lines) == 1 and o.lines[0] == "check-data: 3 problem(s) found", o
        found = o.out.split("problems:")[1].splitlines()[1:]
        assert "b.jpg: the image file is truncated" in found[0]
        assert "c.jpg: the image file is empty" in found[1]
        assert "d.jpg: image is 30x40 but" in found[2]
