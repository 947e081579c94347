"""Atomic file writes: the one way every file of a run is written (standard library only).

A file is written under a temporary name in its own folder, flushed to disk, then renamed over
the target (``os.replace`` is atomic on POSIX and Windows), so a reader or a resumed run sees the
old file or the new one, never half of one. A failed write leaves no temporary file behind.
"""
import json
import math
import os
import tempfile
from contextlib import contextmanager
from typing import Iterable, Iterator


@contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces
    ``path``. ``suffix`` keeps an extension a writer insists on (nnabla's savers look at it)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp" + suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_lines_atomic(path: str, lines: Iterable[str]) -> None:
    """One line per item, each ended by a newline."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")


def json_safe(obj):
    """NaN and infinities -> None, recursively (tuples become lists), so the result is strict JSON."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: str, obj, **kw) -> None:
    """Strict JSON of ``obj`` (non-finite numbers written as null, see ``json_safe``)."""
    write_text_atomic(path, json.dumps(json_safe(obj), allow_nan=False, **kw) + "\n")
