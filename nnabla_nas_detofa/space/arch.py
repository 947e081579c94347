"""The architecture of one path: the once-for-all / NNablaNAS arch dict, validated and hashable.

``{"d": [stem, s1, s2, s3, s4], "e": [18 ratios], "w": [stem0, stem2, s1, s2, s3, s4]}``

* ``d[0]`` in {0, 2}: 2 keeps the stem's residual 3x3 unit, 0 skips it.
* ``d[1:]`` in {0, 1, 2}: extra units over the base depths [2, 2, 4, 2]; units drop from the end.
* ``e``: bottleneck expand ratio per unit slot in stage order (4 + 4 + 6 + 4); dropped slots ignored.
* ``w``: indices into ``WIDTH_CHOICES`` for stem conv 1 (and its residual unit), stem conv 3 and
  stages 1-4.
"""
import json
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

from ..reading import iter_json_lines, parse_json, read_text

BASE_DEPTHS = (2, 2, 4, 2)
DEPTH_CHOICES = (0, 1, 2)
STEM_DEPTH_CHOICES = (0, 2)
WIDTH_CHOICES = (0.65, 0.8, 1.0)
EXPAND_CHOICES = (0.2, 0.25, 0.35)
MAX_DEPTH = max(DEPTH_CHOICES)
STAGE_SLOTS = tuple(b + MAX_DEPTH for b in BASE_DEPTHS)          # (4, 4, 6, 4)
N_SLOTS = sum(STAGE_SLOTS)                                       # 18
N_STAGES = len(BASE_DEPTHS)
STAGE_STRIDES = (1, 2, 2, 2)
# slot index -> (stage, position inside the stage)
SLOT_STAGE = tuple(s for s, n in enumerate(STAGE_SLOTS) for _ in range(n))
SLOT_POS = tuple(p for n in STAGE_SLOTS for p in range(n))
STAGE_FIRST_SLOT = tuple(sum(STAGE_SLOTS[:s]) for s in range(N_STAGES))


class ArchError(ValueError):
    """An arch dict that is not a valid OFA-ResNet50 path; the message names the key."""


def _expand_key(e: float):
    for c in EXPAND_CHOICES:
        if abs(float(e) - c) < 1e-6:
            return c
    return None


class Arch:
    """One path. Immutable; equality and hash ignore the expand ratios of dropped slots."""

    __slots__ = ("d", "e", "w", "_key")

    def __init__(self, d: Sequence[int], e: Sequence[float], w: Sequence[int], where: str = "arch"):
        self._set(*_check(d, e, w, where))

    @classmethod
    def trusted(cls, d: tuple, e: tuple, w: tuple) -> "Arch":
        """An Arch from values known to be valid (tuples of ints / canonical expand ratios taken
        from validated archs and spaces), without re-validating them: the search's children."""
        arch = cls.__new__(cls)
        arch._set(d, e, w)
        return arch

    def _set(self, d: tuple, e: tuple, w: tuple) -> None:
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "e", e)
        object.__setattr__(self, "w", w)
        depth = [BASE_DEPTHS[st] + d[st + 1] for st in range(N_STAGES)]
        ee = tuple(v if SLOT_POS[i] < depth[SLOT_STAGE[i]] else None for i, v in enumerate(e))
        object.__setattr__(self, "_key", (d, ee, w))

    @classmethod
    def _trusted(cls, d: tuple, e: tuple, w: tuple, key: Optional[Tuple] = None) -> "Arch":
        """An Arch from values already known valid (tuples of ints / expand choices), without the
        per-value checks: for code that builds many archs from validated index arrays (``key``,
        when given, is the equality key those arrays computed)."""
        self = object.__new__(cls)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "e", e)
        object.__setattr__(self, "w", w)
        if key is None:
            key = (d, tuple(e[i] if self.slot_active(i) else None for i in range(N_SLOTS)), w)
        object.__setattr__(self, "_key", key)
        return self

    def __setattr__(self, name, value):
        raise AttributeError("Arch is immutable")

    # --- structure ---------------------------------------------------------------------------
    def stage_depth(self, stage: int) -> int:
        """Number of active units of a stage (0-based stage index)."""
        return BASE_DEPTHS[stage] + self.d[stage + 1]

    def slot_active(self, slot: int) -> bool:
        return SLOT_POS[slot] < self.stage_depth(SLOT_STAGE[slot])

    @property
    def stem_residual(self) -> bool:
        return self.d[0] == MAX_DEPTH

    def active_slots(self) -> List[int]:
        return [i for i, v in enumerate(self._key[1]) if v is not None]

    # --- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"d": list(self.d), "e": list(self.e), "w": list(self.w)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, obj, where: str = "arch") -> "Arch":
        if isinstance(obj, Arch):
            return obj
        if not isinstance(obj, dict):
            raise ArchError(f"{where}: expected an object with keys 'd', 'e', 'w', got {type(obj).__name__}")
        missing = [k for k in ("d", "e", "w") if k not in obj]
        if missing:
            raise ArchError(f"{where}: missing key(s) {missing}")
        extra = sorted(set(obj) - {"d", "e", "w"})
        if extra:
            raise ArchError(f"{where}: unknown key(s) {extra} (an arch has 'd', 'e', 'w')")
        return cls(obj["d"], obj["e"], obj["w"], where=where)

    @classmethod
    def from_json(cls, text: str, where: str = "arch") -> "Arch":
        return cls.from_dict(parse_json(text, where, ArchError), where)

    def replace(self, d=None, e=None, w=None) -> "Arch":
        return Arch(self.d if d is None else d, self.e if e is None else e, self.w if w is None else w)

    def key(self) -> Tuple:
        return self._key

    def __eq__(self, other):
        return isinstance(other, Arch) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"Arch(d={list(self.d)}, e={list(self.e)}, w={list(self.w)})"


_EXACT_EXPAND = {c: c for c in EXPAND_CHOICES}  # the common case of _check, without the tolerance loop


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:       # an integer too big for a float
        return False


def _short(v) -> str:
    s = repr(v) if not isinstance(v, int) or v.bit_length() < 200 else "<a huge integer>"
    return s if len(s) <= 60 else s[:57] + "..."


def _check(d, e, w, where) -> Tuple[tuple, tuple, tuple]:
    def as_list(v, name, n):
        if not isinstance(v, (list, tuple)):
            raise ArchError(f"{where}['{name}']: expected a list of {n} values, got {type(v).__name__}")
        if len(v) != n:
            raise ArchError(f"{where}['{name}']: expected {n} values, got {len(v)}")
        return list(v)

    def as_int(v, name, i):
        if type(v) is int and 0 <= v <= 2:  # the common case: every valid depth and width index
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v) or int(v) != v:
            raise ArchError(f"{where}['{name}'][{i}]={_short(v)}: expected an integer")
        return int(v)

    d = as_list(d, "d", 1 + N_STAGES)
    e = as_list(e, "e", N_SLOTS)
    w = as_list(w, "w", 2 + N_STAGES)
    d = tuple(as_int(v, "d", i) for i, v in enumerate(d))
    w = tuple(as_int(v, "w", i) for i, v in enumerate(w))
    if d[0] not in STEM_DEPTH_CHOICES:
        raise ArchError(f"{where}['d'][0]={d[0]}: stem depth must be one of {STEM_DEPTH_CHOICES}")
    for i in range(1, len(d)):
        if d[i] not in DEPTH_CHOICES:
            raise ArchError(f"{where}['d'][{i}]={d[i]}: stage depth must be one of {DEPTH_CHOICES}")
    for i, v in enumerate(w):
        if not 0 <= v < len(WIDTH_CHOICES):
            raise ArchError(f"{where}['w'][{i}]={v}: width index must be in 0..{len(WIDTH_CHOICES) - 1} "
                            f"(indexing {list(WIDTH_CHOICES)})")
    ee = []
    for i, v in enumerate(e):
        k = _EXACT_EXPAND.get(v) if type(v) is float else None
        if k is not None:
            ee.append(k)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise ArchError(f"{where}['e'][{i}]={_short(v)}: expected a number")
        k = _expand_key(v)
        if k is None:
            raise ArchError(f"{where}['e'][{i}]={v}: expand ratio must be one of {list(EXPAND_CHOICES)}")
        ee.append(k)
    return d, tuple(ee), w


class ArchEntry(NamedTuple):
    """One arch read from a file: ``where`` (``file[i]`` or ``file:line``), the object it came in
    (``{"arch": ..., ...}``; None for a bare arch dict) and the validated arch."""

    where: str
    obj: Optional[dict]
    arch: "Arch"


def read_arch_entries(path: str) -> List[ArchEntry]:
    """Archs of a file: a JSON file holding one arch or a list, or JSON Lines; each item a bare
    arch dict or an object with an ``"arch"`` key (extra keys kept in ``obj``). The one arch
    reader of the package; every problem is an ArchError naming the file (and item or line)."""
    text = read_text(path, ArchError, "arch file")
    if not text.strip():
        raise ArchError(f"{path}: empty file")
    items = None
    try:
        whole = parse_json(text, path, ArchError)
    except ArchError as err:
        if "nested too deeply" in str(err) or len(text.strip().splitlines()) == 1:
            raise
        whole = None  # not one JSON document: JSON Lines
    if whole is not None:
        seq = whole if isinstance(whole, list) else [whole]
        if not seq:
            raise ArchError(f"{path}: the list holds no arch")
        items = [(f"{path}[{i}]", o) for i, o in enumerate(seq)]
    else:
        items = list(iter_json_lines(path, ArchError, "arch file"))
    out = []
    for where, o in items:
        if isinstance(o, dict) and "arch" in o:
            out.append(ArchEntry(where, o, Arch.from_dict(o["arch"], where=f"{where}['arch']")))
        else:
            out.append(ArchEntry(where, None, Arch.from_dict(o, where=where)))
    return out


def load_archs(path: str) -> List["Arch"]:
    """The archs of ``read_arch_entries(path)``, in order."""
    return [e.arch for e in read_arch_entries(path)]
