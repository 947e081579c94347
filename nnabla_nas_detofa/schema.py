"""Schemas of experiment-file values: every value a user can set is checked before any work starts.

A schema is ``{key: Spec}``; ``validate(obj, schema, where)`` returns a copy with defaults filled
in, or raises :class:`SchemaError` with one line naming the key path, the value and what was
expected (and the nearest known key for a typo).
"""
import difflib
import math
from typing import Any, Callable, Dict, Optional, Sequence


class SchemaError(ValueError):
    """A value that does not fit its schema; the message names the key path."""


MISSING = object()


class Spec:
    """One value: ``check(value, where)`` returns the normalised value or raises SchemaError."""

    def __init__(self, default=MISSING, nullable: bool = False, doc: str = ""):
        self.default, self.nullable, self.doc = default, nullable, doc

    def __call__(self, value, where: str):
        if value is None:
            if self.nullable:
                return None
            raise SchemaError(f"{where}=null: expected {self.expected()}")
        return self.check(value, where)

    def expected(self) -> str:
        return "a value"

    def check(self, value, where):
        return value

    def fail(self, value, where, extra: str = ""):
        raise SchemaError(f"{where}={show_value(value)}: expected {self.expected()}{extra}")


def show_value(v) -> str:
    """``repr(v)`` cut to 60 characters, for messages (also for an integer too long to print)."""
    try:
        s = repr(v)
    except ValueError:   # an integer too long to print (sys.get_int_max_str_digits)
        s = "<a huge integer>"
    return s if len(s) <= 60 else s[:57] + "..."


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


def finite_number(v) -> bool:
    """A number (not a bool) that is finite and fits a float."""
    return _is_number(v) and _finite(v)


def _finite(v) -> bool:
    """A finite number that fits a float (an integer of 400 digits does not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


class Int(Spec):
    def __init__(self, lo: Optional[int] = None, hi: Optional[int] = None, **kw):
        super().__init__(**kw)
        self.lo, self.hi = lo, hi

    def expected(self):
        if self.lo is not None and self.hi is not None:
            return f"an integer in {self.lo}..{self.hi}"
        if self.lo is not None:
            return f"an integer >= {self.lo}"
        return "an integer"

    def check(self, v, where):
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(v, where)
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            self.fail(v, where)
        return int(v)


class Num(Spec):
    """A finite number in [lo, hi] (``lo_open`` / ``hi_open`` make that side open)."""

    def __init__(self, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
                 hi_open: bool = False, **kw):
        super().__init__(**kw)
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def expected(self):
        if self.lo is None and self.hi is None:
            return "a finite number"
        left = "-inf" if self.lo is None else f"{self.lo:g}"
        right = "inf" if self.hi is None else f"{self.hi:g}"
        return (f"a number in {'(' if self.lo_open or self.lo is None else '['}{left}, {right}"
                f"{')' if self.hi_open or self.hi is None else ']'}")

    def check(self, v, where):
        if not _is_number(v) or not _finite(v):
            self.fail(v, where)
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            self.fail(v, where)
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            self.fail(v, where)
        return float(v)


class Bool(Spec):
    def expected(self):
        return "true or false"

    def check(self, v, where):
        if not isinstance(v, bool):
            self.fail(v, where)
        return v


class Str(Spec):
    def expected(self):
        return "a non-empty string"

    def check(self, v, where):
        if not isinstance(v, str) or not v:
            self.fail(v, where)
        return v


class Choice(Spec):
    def __init__(self, choices: Sequence, **kw):
        super().__init__(**kw)
        self.choices = tuple(choices)

    def expected(self):
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, v, where):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)) or v not in self.choices:
            self.fail(v, where)
        return v


class ListOf(Spec):
    def __init__(self, item: Spec, min_len: int = 0, max_len: Optional[int] = None, **kw):
        super().__init__(**kw)
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def expected(self):
        n = (f"{self.min_len}" if self.max_len == self.min_len else
             f"at least {self.min_len}" if self.max_len is None else f"{self.min_len}..{self.max_len}")
        return f"a list of {n} item(s), each {self.item.expected()}"

    def check(self, v, where):
        if not isinstance(v, (list, tuple)) or len(v) < self.min_len or \
                (self.max_len is not None and len(v) > self.max_len):
            self.fail(v, where)
        return [self.item(x, f"{where}[{i}]") for i, x in enumerate(v)]


class Obj(Spec):
    """A nested object with its own schema."""

    def __init__(self, schema: Dict[str, Spec], **kw):
        kw.setdefault("default", {})
        super().__init__(**kw)
        self.schema = schema

    def expected(self):
        return "an object with keys " + ", ".join(sorted(self.schema))

    def check(self, v, where):
        if not isinstance(v, dict):
            self.fail(v, where)
        return validate(v, self.schema, where)


class Custom(Spec):
    """``fn(value, where) -> value`` raising ValueError with its own message."""

    def __init__(self, fn: Callable[[Any, str], Any], expected: str = "a valid value", **kw):
        super().__init__(**kw)
        self.fn, self._expected = fn, expected

    def expected(self):
        return self._expected

    def check(self, v, where):
        try:
            return self.fn(v, where)
        except SchemaError:
            raise
        except ValueError as err:
            msg = str(err)
            raise SchemaError(msg if msg.startswith(where) else f"{where}: {msg}") from None


def unknown_key_message(key: str, known: Sequence[str], where: str) -> str:
    near = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"{where}: unknown key '{key}'{hint}; known: {', '.join(sorted(known))}"


def validate(obj: Dict, schema: Dict[str, Spec], where: str) -> Dict:
    """A checked copy of ``obj`` with every default of ``schema`` filled in."""
    if not isinstance(obj, dict):
        raise SchemaError(f"{where}: expected an object")
    for key in obj:
        if key not in schema:
            raise SchemaError(unknown_key_message(str(key), list(schema), where))
    out = {}
    for key, spec in schema.items():
        path = f"{where}.{key}"
        if key in obj:
            out[key] = spec(obj[key], path)
        elif spec.default is MISSING:
            raise SchemaError(f"missing key '{where}.{key}' ({spec.expected()})")
        else:
            out[key] = _copy(spec.default)
            if isinstance(spec, Obj) and out[key] is not None:
                out[key] = validate(out[key], spec.schema, path)
    return out


def _copy(v):
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


# specs shared by experiment files and command-line flags (one definition each)
MAX_SEED = 2 ** 31 - 2          # seeds reach nnabla's and numpy's int32 generators, some as seed + 1


def seed_spec(default=0) -> Int:
    return Int(0, MAX_SEED, default=default)


def workers_spec(default=4) -> Int:
    """Threads of a thread pool."""
    return Int(1, 256, default=default)


MAX_EPOCHS = 100_000


def epochs_spec(**kw) -> Int:
    """A number of training epochs."""
    return Int(0, MAX_EPOCHS, **kw)
