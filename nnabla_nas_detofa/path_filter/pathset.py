"""Path sets: measured paths as JSON Lines, one path a line.

``{"arch": {"d": [...], "e": [...], "w": [...]}, "flops": MFLOPs, "val_loss": float, ...}``

Extra keys (e.g. ``"ap"``, ``"bucket"``) are kept and written back. The reader names the file and
line of the first malformed line; the writer replaces the file atomically.
"""
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..atomic import write_lines_atomic
from ..reading import iter_json_lines
from ..schema import show_value
from ..space import Arch, ArchError, SearchSpace
from ..space.arch import read_arch_entries

CORE_KEYS = ("arch", "flops", "val_loss")


class PathSetError(ValueError):
    """A malformed path set file or record; the message starts with ``file:line:``."""


@dataclass
class PathRecord:
    arch: Arch
    flops: float
    val_loss: float
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_obj(self) -> Dict[str, Any]:
        obj = {"arch": self.arch.to_dict(), "flops": float(self.flops), "val_loss": float(self.val_loss)}
        obj.update({k: v for k, v in self.extra.items() if k not in CORE_KEYS})
        return obj


def _number(obj, key, where, positive=False) -> float:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PathSetError(f"{where}: '{key}'={show_value(v)}: expected a number")
    try:
        v = float(v)
    except OverflowError:       # an integer too big for a float
        v = math.inf
    if not math.isfinite(v):
        raise PathSetError(f"{where}: '{key}'={v}: expected a finite number")
    if positive and v <= 0:
        raise PathSetError(f"{where}: '{key}'={v}: expected a positive number")
    return v


def _arch(obj, where: str, space: Optional[SearchSpace]) -> Arch:
    try:
        arch = Arch.from_dict(obj, where=f"{where}: 'arch'")
        if space is not None:
            arch = space.validate(arch, where=f"{where}: 'arch'")
    except ArchError as err:
        raise PathSetError(str(err)) from None
    return arch


def record_from_obj(obj: Any, where: str = "record", space: Optional[SearchSpace] = None) -> PathRecord:
    """Validate one decoded line: an object with 'arch', finite positive 'flops', finite 'val_loss'."""
    if not isinstance(obj, dict):
        raise PathSetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in CORE_KEYS:
        if key not in obj:
            raise PathSetError(f"{where}: missing key '{key}'")
    arch = _arch(obj["arch"], where, space)
    flops = _number(obj, "flops", where, positive=True)
    loss = _number(obj, "val_loss", where)
    return PathRecord(arch, flops, loss, {k: v for k, v in obj.items() if k not in CORE_KEYS})


class PathSet:
    """An ordered list of PathRecord with array views for training and metrics."""

    def __init__(self, records: Iterable[PathRecord] = ()):
        self.records: List[PathRecord] = list(records)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_lists(cls, archs: Sequence, flops: Sequence[float], val_loss: Sequence[float],
                   extra: Optional[Sequence[Dict[str, Any]]] = None) -> "PathSet":
        if not len(archs) == len(flops) == len(val_loss):
            raise ValueError(f"lengths differ: {len(archs)} archs, {len(flops)} flops, {len(val_loss)} losses")
        if extra is not None and len(extra) != len(archs):
            raise ValueError(f"lengths differ: {len(archs)} archs, {len(extra)} extra")
        out = []
        for i, (a, f, v) in enumerate(zip(archs, flops, val_loss)):
            obj = {"arch": Arch.from_dict(a, where=f"path {i}"), "flops": f, "val_loss": v}
            if extra is not None:
                obj.update({k: x for k, x in extra[i].items() if k not in CORE_KEYS})
            out.append(record_from_obj(obj, where=f"path {i}"))
        return cls(out)

    @classmethod
    def read(cls, path: str, space: Optional[SearchSpace] = None) -> "PathSet":
        """Read a JSON Lines file (blank lines skipped). Raises PathSetError naming file:line (also
        when the file cannot be read or is not UTF-8)."""
        records = [record_from_obj(obj, where, space) for where, obj in iter_json_lines(path, PathSetError, "path set")]
        if not records:
            raise PathSetError(f"{path}: no paths in the file")
        return cls(records)

    def write(self, path: str) -> None:
        """Write atomically: a temporary file in the same folder, then os.replace."""
        lines = []
        for i, r in enumerate(self.records):
            if not (math.isfinite(r.flops) and r.flops > 0 and math.isfinite(r.val_loss)):
                raise PathSetError(f"path {i}: flops={r.flops}, val_loss={r.val_loss}: expected finite values")
            lines.append(json.dumps(r.to_obj()))
        write_lines_atomic(path, lines)

    # --- views -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[PathRecord]:
        return iter(self.records)

    def __getitem__(self, i) -> PathRecord:
        return self.records[i]

    def subset(self, indices: Iterable[int]) -> "PathSet":
        return PathSet(self.records[int(i)] for i in indices)

    def __add__(self, other: "PathSet") -> "PathSet":
        return PathSet(self.records + list(other.records))

    @property
    def archs(self) -> List[Arch]:
        return [r.arch for r in self.records]

    @property
    def flops(self) -> np.ndarray:
        return np.array([r.flops for r in self.records], dtype=np.float64)

    @property
    def val_loss(self) -> np.ndarray:
        return np.array([r.val_loss for r in self.records], dtype=np.float64)


def read_arch_lines(path: str) -> List[Tuple[str, Dict[str, Any], Arch, Optional[float]]]:
    """Archs to score (any file ``space.arch.read_arch_entries`` reads); per arch, in order:
    (where, the line's object (``{"arch": ...}`` for a bare arch), arch, its "flops" or None)."""
    try:
        entries = read_arch_entries(path)
    except ArchError as err:
        raise PathSetError(str(err)) from None
    out = []
    for e in entries:
        obj = e.obj if e.obj is not None else {"arch": e.arch.to_dict()}
        flops = _number(obj, "flops", e.where, positive=True) if "flops" in obj else None
        out.append((e.where, obj, e.arch, flops))
    return out
