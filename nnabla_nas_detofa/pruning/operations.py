"""Operations: one choice at one decision point, and the sub-spaces they define.

A decision is named as in ``SearchSpace.to_dict``: ``d0`` (stem depth), ``d1``..``d4`` (stage
depths), ``w0``..``w5`` (width indices: stem conv 1, stem conv 3, stages 1-4), ``e0``..``e17``
(one unit slot's expand ratio). In a coupled (CompOFA*) space a stage's depth and width are one
decision, ``dw1``..``dw4``, whose choices are the (depth, width index) pairs.

**Decision: a path makes a choice only where the decision is active.** The expand ratio of a
dropped unit slot changes nothing in the network (``Arch`` equality ignores it), so a path with
stage 1 at depth 2 makes no choice at ``e2`` / ``e3``. Consequently: an operation's paths (for
its score) are the paths of the space that make that choice (for an optional slot, the stage
is deep enough to run it), and a path belongs to a pruned space iff every choice it makes is
kept for its own FLOPs bucket (``SearchSpace.contains`` already ignores dropped slots).
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple, Union

from ..space import BASE_DEPTHS, N_SLOTS, N_STAGES, SearchSpace, SpaceError
from ..space.arch import SLOT_POS, SLOT_STAGE

Choice = Union[int, float, Tuple[int, int]]


class PruningError(ValueError):
    """Bad pruning input or an impossible request; the message names the decision, bucket or file."""


@dataclass(frozen=True, order=True)
class Operation:
    """One choice at one decision point, e.g. ``Operation("e5", 0.2)`` or ``Operation("dw2", (1, 1))``."""

    decision: str
    choice: Choice

    def to_dict(self) -> Dict:
        c = list(self.choice) if isinstance(self.choice, tuple) else self.choice
        return {"decision": self.decision, "choice": c}

    def __str__(self):
        return f"{self.decision}={self.choice}"


def _kind_index(name: str) -> Tuple[str, int]:
    kind = name.rstrip("0123456789")
    idx = name[len(kind):]
    if kind not in ("d", "w", "e", "dw") or not idx.isdigit():
        raise PruningError(f"decision {name!r}: expected d0..d4, w0..w5, e0..e17 or dw1..dw4")
    i = int(idx)
    limit = {"d": N_STAGES, "w": N_STAGES + 1, "e": N_SLOTS - 1, "dw": N_STAGES}[kind]
    if i > limit or (kind == "dw" and i < 1):
        raise PruningError(f"decision {name!r}: index out of range")
    return kind, i


def check_coupling(space: SearchSpace) -> None:
    """Pruning a CompOFA* pair removes its depth and its width from that stage, which is exact
    only when no depth or width value appears in two pairs (true of CompOFA*'s pairs)."""
    if not space.coupled:
        return
    for s, pairs in space.pairs.items():
        ds, ws = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(set(ds)) != len(ds) or len(set(ws)) != len(ws):
            raise PruningError(f"space '{space.name}': stage {s + 1} pairs {list(pairs)} share a depth or a width; "
                               "pruning one pair cannot be expressed as kept choices (only one-to-one pairs, "
                               "as CompOFA*'s, are supported)")


def decisions(space: SearchSpace) -> List[Tuple[str, Tuple]]:
    """``(decision, choices)`` for every decision point of ``space``, in a fixed order."""
    check_coupling(space)
    out = [("d0", space.choices[("d", 0)]), ("w0", space.choices[("w", 0)]), ("w1", space.choices[("w", 1)])]
    for s in range(N_STAGES):
        if space.coupled:
            out.append((f"dw{s + 1}", tuple(sorted(space.pairs[s]))))
        else:
            out.append((f"d{s + 1}", space.choices[("d", s + 1)]))
            out.append((f"w{s + 2}", space.choices[("w", s + 2)]))
    out += [(f"e{k}", space.choices[("e", k)]) for k in range(N_SLOTS)]
    return out


def choices_of(space: SearchSpace) -> Dict[str, Tuple]:
    return dict(decisions(space))


def _restriction(space: SearchSpace, decision: str, values: Sequence) -> Dict:
    kind, i = _kind_index(decision)
    if kind == "dw":
        if not space.coupled:
            raise PruningError(f"decision {decision!r} exists only in a coupled (CompOFA*) space")
        vals = [tuple(v) for v in values]
        return {("d", i): [p[0] for p in vals], ("w", i + 1): [p[1] for p in vals]}
    if space.coupled and ((kind == "d" and i > 0) or (kind == "w" and i > 1)):
        raise PruningError(f"decision {decision!r}: in a coupled space a stage's depth and width are one "
                           f"decision, dw1..dw4")
    return {(kind, i): list(values)}


def restrict(space: SearchSpace, kept: Dict[str, Sequence], name: str = None) -> SearchSpace:
    """``space`` keeping, for every decision named in ``kept``, only those choices.

    PruningError when a decision would keep no choice or names a choice ``space`` lacks."""
    allowed = choices_of(space)
    keep = {}
    for dec, vals in kept.items():
        if dec not in allowed:
            _kind_index(dec)
            raise PruningError(f"decision {dec!r} is not a decision of space '{space.name}'")
        vals = [tuple(v) if isinstance(v, (list, tuple)) else v for v in vals]
        bad = [v for v in vals if v not in allowed[dec]]
        if bad:
            raise PruningError(f"decision {dec}: choices {bad} are not in the space ({list(allowed[dec])})")
        if not vals:
            raise PruningError(f"decision {dec}: every choice would be pruned (a decision keeps at least one)")
        keep.update(_restriction(space, dec, vals))
    try:
        return space.restrict(keep, name=name)
    except SpaceError as err:
        raise PruningError(str(err)) from None


def slot_requirement(decision: str):
    """For an expand decision of an optional slot: (stage, smallest depth value that runs it);
    None for decisions that every path makes."""
    kind, k = _kind_index(decision)
    if kind != "e":
        return None
    s, pos = SLOT_STAGE[k], SLOT_POS[k]
    need = pos - BASE_DEPTHS[s] + 1
    return (s, need) if need > 0 else None


def operation_space(space: SearchSpace, op: Operation):
    """The paths of ``space`` that make the choice ``op``: the decision fixed to it and, for an
    optional unit slot, the stage deep enough to run the slot. None when no path of ``space``
    makes that choice (e.g. a slot the space's depths never reach)."""
    kept = {op.decision: [op.choice]}
    req = slot_requirement(op.decision)
    if req is not None:
        s, need = req
        if space.coupled:
            kept[f"dw{s + 1}"] = [p for p in space.pairs[s] if p[0] >= need]
        else:
            kept[f"d{s + 1}"] = [v for v in space.choices[("d", s + 1)] if v >= need]
        if not kept.get(f"dw{s + 1}", kept.get(f"d{s + 1}")):
            return None
    return restrict(space, kept)


def operations(space: SearchSpace) -> List[Operation]:
    """Every operation that pruning may remove: the choices of decisions with two or more choices
    that some path of ``space`` makes."""
    out = []
    for dec, vals in decisions(space):
        if len(vals) < 2:
            continue
        if operation_space(space, Operation(dec, vals[0])) is None:
            continue
        out += [Operation(dec, v) for v in vals]
    return out


def kept_to_json(kept: Dict[str, Sequence]) -> Dict[str, List]:
    return {dec: [list(v) if isinstance(v, tuple) else v for v in vals] for dec, vals in kept.items()}
