"""Image files checked without decoding them: size from the header, end marker present.

``probe_image(path) -> (width, height)`` reads a JPEG's markers up to its frame header (and the
EXIF orientation, since ``cv2.imread`` turns the image upright: 90-degree orientations swap width
and height) and looks for its end-of-image marker ``FF D9`` after the frame header; a PNG's
``IHDR`` and its ``IEND`` chunk. A file without its end marker was cut short: OpenCV would still
return an image from it, partly grey, after a warning on stderr. Other formats (BMP, TIFF, WebP,
...) are decoded with OpenCV, the reader the data loader uses. Every problem is an ``ImageError``
whose message says what is wrong (the caller names the file).

A few small reads per file: tens of thousands of images per second from the page cache.
"""
import os
import struct
from typing import Tuple

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# start-of-frame markers (baseline, progressive, lossless, arithmetic...): C0-CF except DHT, JPG, DAC
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}
TAIL = 4096


class ImageError(OSError):
    """An image file that cannot be used; the message says why (not which file)."""


def _exif_orientation(seg: bytes) -> int:
    """The EXIF orientation (1..8) of an APP1 segment's payload, 1 when absent or unreadable."""
    if not seg.startswith(b"Exif\x00\x00") or len(seg) < 14:
        return 1
    t = seg[6:]
    order = {b"II": "<", b"MM": ">"}.get(t[:2])
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", t, 4)
        (n,) = struct.unpack_from(order + "H", t, ifd)
        for k in range(n):
            tag, typ, _, value = struct.unpack_from(order + "HHI4s", t, ifd + 2 + 12 * k)
            if tag == 0x0112 and typ == 3:
                (v,) = struct.unpack_from(order + "H", value, 0)
                return v if 1 <= v <= 8 else 1
    except struct.error:
        return 1
    return 1


def _find_backwards(f, size: int, needle: bytes, start: int) -> bool:
    """Whether ``needle`` occurs in the file at or after offset ``start`` (read from the end)."""
    end = size
    while end > start:
        lo = max(start, end - TAIL)
        f.seek(lo)
        chunk = f.read(min(size, end + len(needle) - 1) - lo)   # overlaps the chunk read before
        if needle in chunk:
            return True
        end = lo
    return False


def _jpeg(f, size: int) -> Tuple[int, int]:
    pos, orientation = 2, 1
    while True:
        f.seek(pos)
        b = f.read(2)
        if len(b) < 2:
            raise ImageError("the image file is truncated (it ends before the JPEG frame header)")
        if b[0] != 0xFF:
            raise ImageError(f"cannot decode image: no JPEG marker at byte {pos} (found 0x{b[0]:02x})")
        marker = b[1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker in STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise ImageError("cannot decode image: the JPEG has no frame header before its image data")
        ln = f.read(2)
        if len(ln) < 2:
            raise ImageError("the image file is truncated (it ends inside the JPEG header)")
        (length,) = struct.unpack(">H", ln)
        if length < 2:
            raise ImageError(f"cannot decode image: the JPEG segment at byte {pos} has length {length}")
        if marker == 0xE1 and orientation == 1:
            orientation = _exif_orientation(f.read(min(length - 2, 65533)))
        if marker in SOF_MARKERS:
            f.seek(pos + 4)
            sof = f.read(5)
            if len(sof) < 5:
                raise ImageError("the image file is truncated (it ends inside the JPEG frame header)")
            _, h, w = struct.unpack(">BHH", sof)
            if w == 0 or h == 0:
                raise ImageError(f"cannot decode image: the JPEG frame header says {w}x{h} pixels")
            if not _find_backwards(f, size, JPEG_EOI, pos + 2 + length):
                raise ImageError("the image file is truncated (no JPEG end marker FF D9 after the image data)")
            return (h, w) if orientation >= 5 else (w, h)
        pos += 2 + length


def _png(f, size: int) -> Tuple[int, int]:
    f.seek(8)
    head = f.read(16)
    if len(head) < 16 or head[4:8] != b"IHDR":
        raise ImageError("cannot decode image: the PNG has no IHDR header")
    w, h = struct.unpack(">II", head[8:16])
    if w == 0 or h == 0:
        raise ImageError(f"cannot decode image: the PNG header says {w}x{h} pixels")
    if not _find_backwards(f, size, PNG_IEND, 33):
        raise ImageError("the image file is truncated (no PNG end chunk IEND)")
    return w, h


def probe_image(path: str) -> Tuple[int, int]:
    """``(width, height)`` of an image file as ``cv2.imread`` will return it; ``ImageError`` when the
    file is missing, unreadable, not an image, or cut short (see module doc)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ImageError("the image file is empty")
            magic = f.read(8)
            if magic.startswith(JPEG_SOI):
                return _jpeg(f, size)
            if magic == PNG_SIGNATURE:
                return _png(f, size)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("image file is missing") from None
    except OSError as err:
        raise ImageError(f"cannot read the image ({err.strerror or err})") from None
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError("cannot decode image (not an image format OpenCV reads)")
    return int(img.shape[1]), int(img.shape[0])
