"""Reading a user's text files: every failure becomes one line naming the file (standard library only).

A file can be missing or unreadable, not UTF-8, not JSON, or JSON nested so deeply that Python's
parser recurses out; each caller gets its own exception type (``error``) with a message that
starts with the file (and line, for JSON Lines), so the command line can print it as it is.
"""
import json
from typing import Iterator, List, Optional, Tuple, Type

MAX_DEPTH = 64  # deeper than any file of ours; deeper input is refused before it is walked


def read_text(path: str, error: Type[Exception], what: str = "file") -> str:
    """The whole file as text (UTF-8, a BOM allowed)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise error(f"{path}:{line}: the {what} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                    f"{err.start})") from None


def _depth_ok(obj, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return False
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return True


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def _loads(text: str, where: str, error: Type[Exception], max_depth: Optional[int]):
    """``json.loads``; every way it can fail becomes ``error`` naming ``where``. A key given twice
    in one object is refused (``json`` would keep the last one silently), except in big data files
    (``max_depth=None``)."""
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys if max_depth is not None else None)
    except json.JSONDecodeError as err:
        raise error(f"{where}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply (more than {max_depth or MAX_DEPTH} levels)") from None
    except ValueError as err:   # e.g. an integer literal longer than sys.get_int_max_str_digits()
        raise error(f"{where}: invalid JSON: {err}") from None
    if max_depth is not None and not _depth_ok(obj, max_depth):
        raise error(f"{where}: JSON nested too deeply (more than {max_depth} levels)")
    return obj


def parse_json(text: str, where: str, error: Type[Exception], max_depth: Optional[int] = MAX_DEPTH):
    """``json.loads`` with one-line errors: malformed JSON, nesting deeper than ``max_depth``
    (``None``: only as deep as Python's parser can go, for big data files not worth walking)."""
    return _loads(text, where, error, max_depth)


def read_json(path: str, error: Type[Exception], what: str = "JSON file", max_depth: Optional[int] = MAX_DEPTH):
    """The JSON document of a file (see ``read_text`` and ``parse_json``)."""
    return parse_json(read_text(path, error, what), path, error, max_depth)


def read_lines(path: str, error: Type[Exception], what: str = "file") -> List[str]:
    """The lines of a text file (see ``read_text``), without their line ends."""
    return read_text(path, error, what).splitlines()


def iter_json_lines(path: str, error: Type[Exception], what: str = "JSON Lines file"
                    ) -> Iterator[Tuple[str, object]]:
    """``(where, object)`` for every non-blank line; ``where`` is ``path:line``."""
    for n, line in enumerate(read_text(path, error, what).splitlines(), 1):
        if line.strip():
            where = f"{path}:{n}"
            try:
                obj = json.loads(line, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as err:
                raise error(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
            except RecursionError:
                raise error(f"{where}: JSON nested too deeply (more than {MAX_DEPTH} levels)") from None
            except ValueError as err:
                raise error(f"{where}: not valid JSON ({err})") from None
            if not _depth_ok(obj, MAX_DEPTH):
                raise error(f"{where}: JSON nested too deeply (more than {MAX_DEPTH} levels)")
            yield where, obj
