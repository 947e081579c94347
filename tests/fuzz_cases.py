"""Helpers (no tests) of the fuzz tests: malformed variants of user files and values, a way to call
an entry point in-process, and folder snapshots.

Every entry point must end a malformed input with exit status 2 (1: ``check-data`` findings) and
exactly one stderr line naming the file and the key or flag, never a traceback, and must write
nothing outside the run's own output folder.
"""
import contextlib
import copy
import hashlib
import io
import json
import os
import random
import traceback

NAN, INF = float("nan"), float("inf")
DEEP = 0
for _ in range(80):          # deeper than reading.MAX_DEPTH
    DEEP = [DEEP]
HUGE = 10 ** 30

# values no number, string, flag or list setting of ours accepts in place of one of the others
NOT_A_NUMBER = [NAN, INF, -INF, "1", [], {}, True, -HUGE, DEEP]   # null: see the tests (some are nullable)
NOT_A_STRING = [5, 1.5, [], {}, True, "", NAN, DEEP]
NOT_A_BOOL = ["yes", 1, 0.0, [], {}, NAN]
NOT_A_LIST = ["x", 5, {}, NAN, [None], [[]], DEEP]


def leaves(obj, path=()):
    """``(path, value)`` of every leaf (non-container value or list of leaves) of a JSON object."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, path + (k,))
    else:
        yield path, obj


def replaced(obj, path, value):
    out = copy.deepcopy(obj)
    o = out
    for k in path[:-1]:
        o = o[k]
    o[path[-1]] = copy.deepcopy(value)
    return out


def bad_values_for(value):
    """Replacements that are wrong for a setting whose valid value is ``value``."""
    if isinstance(value, bool):
        return NOT_A_BOOL
    if isinstance(value, (int, float)):
        return NOT_A_NUMBER
    if isinstance(value, str):
        return NOT_A_STRING
    if isinstance(value, list):
        return NOT_A_LIST
    return []


def byte_variants(data: bytes, n: int, seed: int = 0):
    """``n`` malformed variants of a file: truncations, byte flips, bytes that are not UTF-8, NUL
    bytes, a UTF-16 re-encoding, an empty file."""
    rng = random.Random(seed)
    out = [("empty", b""), ("utf16", data.decode("utf-8", "replace").encode("utf-16")),
           ("latin1 byte", data[: len(data) // 2] + b"\xe9\xff" + data[len(data) // 2:]),
           ("nul", data[: len(data) // 3] + b"\x00" + data[len(data) // 3:])]
    while len(out) < n:
        kind = rng.choice(("truncate", "flip", "insert"))
        k = rng.randrange(1, max(2, len(data)))
        if kind == "truncate":
            out.append((f"truncated at {k}", data[:k]))
        elif kind == "flip":
            b = bytearray(data)
            b[k - 1] ^= 1 << rng.randrange(8)
            out.append((f"bit flip at {k - 1}", bytes(b)))
        else:
            out.append((f"0xff inserted at {k}", data[:k] + b"\xff" + data[k:]))
    return out[:n]


def json_text(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


class Outcome:
    def __init__(self, rc, out, err, exc=None):
        self.rc, self.out, self.exc = rc, out, exc
        self.lines = [ln for ln in err.splitlines() if ln.strip()]

    def __repr__(self):
        return f"Outcome(rc={self.rc}, stderr={self.lines!r}, exc={self.exc!r})"


def call(fn, argv, sentinel=()):
    """``fn(argv)`` in-process with stdout/stderr captured. An exception of ``sentinel`` types is
    returned as ``Outcome.exc`` (e.g. "the run went past its checks"); any other exception is a
    failure of the test, with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = fn(list(argv))
    except tuple(sentinel) as e:
        return Outcome(None, out.getvalue(), err.getvalue(), e)
    except BaseException:  # noqa: B902 - the point: nothing may escape
        raise AssertionError(f"{argv}: raised instead of one line:\n{traceback.format_exc()}") from None
    return Outcome(rc, out.getvalue(), err.getvalue())


def assert_one_line(o: Outcome, *needles, rc=2, what=""):
    """Exit status ``rc`` and one stderr line holding every needle."""
    assert o.exc is None, f"{what}: accepted (went past every check): {o!r}"
    assert o.rc == rc and len(o.lines) == 1, f"{what}: {o!r}"
    assert "Traceback" not in o.lines[0], f"{what}: {o!r}"
    for n in needles:
        assert str(n) in o.lines[0], f"{what}: {n!r} not named in {o.lines[0]!r}"


def snapshot(folder):
    """``{relative path: sha1}`` of every file under ``folder`` (and every folder, as None)."""
    out = {}
    for d, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), folder)] = None
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder)] = hashlib.sha1(f.read()).hexdigest()
    return out
