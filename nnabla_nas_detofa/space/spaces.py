"""Search spaces: which choice each decision point may take, uniform sampling and exact size.

A decision point is one place where a path chooses: ``("d", i)`` (stem / stage depth),
``("w", j)`` (a width index) or ``("e", k)`` (one unit slot's expand ratio). A space keeps, for
every decision point, the tuple of allowed choices. CompOFA* couples each stage's depth and width.
"""
import itertools
import random
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .arch import (DEPTH_CHOICES, EXPAND_CHOICES, N_SLOTS, N_STAGES, STAGE_FIRST_SLOT,
                   BASE_DEPTHS, STEM_DEPTH_CHOICES, WIDTH_CHOICES, Arch, ArchError)

Decision = Tuple[str, int]
COMPOFA_PAIRS = ((0, 0), (1, 1), (2, 2))  # (depth, width index): (0, 0.65), (1, 0.8), (2, 1.0)


def decision_points() -> List[Decision]:
    return ([("d", i) for i in range(1 + N_STAGES)] + [("w", j) for j in range(2 + N_STAGES)]
            + [("e", k) for k in range(N_SLOTS)])


class SpaceError(ValueError):
    pass


class SearchSpace:
    """``choices[decision]`` = allowed values (depths, width indices, expand ratios).

    ``coupled`` (CompOFA*): each stage picks a (depth, width index) pair from ``pairs``."""

    def __init__(self, choices: Dict[Decision, Sequence], coupled: bool = False,
                 pairs: Sequence[Tuple[int, int]] = COMPOFA_PAIRS, name: str = "custom"):
        self.name = name
        self.coupled = bool(coupled)
        self.choices: Dict[Decision, Tuple] = {}
        for dp in decision_points():
            if dp not in choices:
                raise SpaceError(f"space '{name}': no choices for decision {dp}")
            allowed = _allowed(dp)
            vals = tuple(sorted(set(choices[dp])))
            if not vals:
                raise SpaceError(f"space '{name}': decision {dp} has no choice left")
            bad = [v for v in vals if v not in allowed]
            if bad:
                raise SpaceError(f"space '{name}': decision {dp} choices {bad} not in {allowed}")
            self.choices[dp] = vals
        self.pairs = {}
        if self.coupled:
            for s in range(N_STAGES):
                ok = tuple(p for p in pairs if p[0] in self.choices[("d", s + 1)]
                           and p[1] in self.choices[("w", s + 2)])
                if not ok:
                    raise SpaceError(f"space '{name}': stage {s + 1} has no (depth, width) pair left")
                self.pairs[s] = ok

    # --- membership --------------------------------------------------------------------------
    def contains(self, arch: Arch) -> bool:
        arch = Arch.from_dict(arch)
        if arch.d[0] not in self.choices[("d", 0)]:
            return False
        for j in range(2):
            if arch.w[j] not in self.choices[("w", j)]:
                return False
        for s in range(N_STAGES):
            if self.coupled:
                if (arch.d[s + 1], arch.w[s + 2]) not in self.pairs[s]:
                    return False
            elif arch.d[s + 1] not in self.choices[("d", s + 1)] or arch.w[s + 2] not in self.choices[("w", s + 2)]:
                return False
        return all(arch.e[k] in self.choices[("e", k)] for k in arch.active_slots())

    def validate(self, arch, where="arch") -> Arch:
        arch = Arch.from_dict(arch, where)
        if not self.contains(arch):
            raise ArchError(f"{where}: {arch} is outside the search space '{self.name}'")
        return arch

    # --- size --------------------------------------------------------------------------------
    def stage_options(self, s: int) -> List[Tuple[int, int, int]]:
        """(depth, width index, number of expand combinations) for every allowed stage setting."""
        first = STAGE_FIRST_SLOT[s]
        if self.coupled:
            dw = list(self.pairs[s])
        else:
            dw = [(d, w) for d in self.choices[("d", s + 1)] for w in self.choices[("w", s + 2)]]
        out = []
        for d, w in dw:
            n = 1
            for k in range(first, first + BASE_DEPTHS[s] + d):
                n *= len(self.choices[("e", k)])
            out.append((d, w, n))
        return out

    def size(self) -> int:
        """Exact number of distinct networks (dropped slots' expand ratios do not count)."""
        n = len(self.choices[("d", 0)]) * len(self.choices[("w", 0)]) * len(self.choices[("w", 1)])
        for s in range(N_STAGES):
            n *= sum(c for _, _, c in self.stage_options(s))
        return n

    def iter_paths(self, limit: int = 1_000_000) -> Iterator[Arch]:
        """Every distinct network of the space once (dropped slots take their first allowed
        ratio), for spaces of at most ``limit`` paths (tests, exact counts)."""
        if self.size() > limit:
            raise SpaceError(f"space '{self.name}' has {self.size()} paths, more than limit={limit} to enumerate")
        stem = itertools.product(self.choices[("d", 0)], self.choices[("w", 0)], self.choices[("w", 1)])
        stages = [[(d, w) for d, w, _ in self.stage_options(s)] for s in range(N_STAGES)]
        for (d0, w0, w1), *dws in itertools.product(list(stem), *stages):
            d = [d0] + [dw[0] for dw in dws]
            w = [w0, w1] + [dw[1] for dw in dws]
            active = Arch(d, [EXPAND_CHOICES[0]] * N_SLOTS, w).active_slots()
            fixed = [self.choices[("e", k)][0] for k in range(N_SLOTS)]
            for es in itertools.product(*[self.choices[("e", k)] for k in active]):
                e = list(fixed)
                for k, v in zip(active, es):
                    e[k] = v
                yield Arch(d, e, w)

    # --- sampling ----------------------------------------------------------------------------
    def sample(self, rng: Optional[random.Random] = None, mode: str = "decision") -> Arch:
        """A random path. ``decision``: every decision uniform and independent (once-for-all's
        sampler). ``path``: uniform over distinct networks (deeper stages weighted by their count)."""
        rng = rng or random
        if mode not in ("decision", "path"):
            raise ValueError(f"mode={mode!r}: expected 'decision' or 'path'")
        d = [rng.choice(self.choices[("d", 0)])] + [0] * N_STAGES
        w = [rng.choice(self.choices[("w", 0)]), rng.choice(self.choices[("w", 1)])] + [0] * N_STAGES
        for s in range(N_STAGES):
            opts = self.stage_options(s)
            if mode == "path":
                dd, ww, _ = rng.choices(opts, weights=[c for _, _, c in opts])[0]
            elif self.coupled:
                dd, ww = rng.choice(self.pairs[s])
            else:
                dd, ww = rng.choice(self.choices[("d", s + 1)]), rng.choice(self.choices[("w", s + 2)])
            d[s + 1], w[s + 2] = dd, ww
        e = [rng.choice(self.choices[("e", k)]) for k in range(N_SLOTS)]
        return Arch(d, e, w)

    def extreme(self, largest: bool) -> Arch:
        """The smallest / largest path (FLOPs grow with every choice, so pick the end of each)."""
        pick = max if largest else min
        d = [pick(self.choices[("d", 0)])] + [0] * N_STAGES
        w = [pick(self.choices[("w", 0)]), pick(self.choices[("w", 1)])] + [0] * N_STAGES
        for s in range(N_STAGES):
            if self.coupled:
                d[s + 1], w[s + 2] = pick(self.pairs[s])
            else:
                d[s + 1], w[s + 2] = pick(self.choices[("d", s + 1)]), pick(self.choices[("w", s + 2)])
        e = [pick(self.choices[("e", k)]) for k in range(N_SLOTS)]
        return Arch(d, e, w)

    def restrict(self, keep: Dict[Decision, Iterable], name: Optional[str] = None) -> "SearchSpace":
        """A sub-space keeping, for the listed decisions, only the given choices."""
        ch = {dp: tuple(v for v in self.choices[dp] if dp not in keep or v in set(keep[dp]))
              for dp in self.choices}
        pairs = [p for s in self.pairs.values() for p in s] if self.coupled else COMPOFA_PAIRS
        return SearchSpace(ch, coupled=self.coupled, pairs=sorted(set(pairs)), name=name or self.name)

    def to_dict(self) -> Dict:
        return {"name": self.name, "coupled": self.coupled,
                "choices": {f"{k}{i}": list(v) for (k, i), v in self.choices.items()}}

    def __eq__(self, other):
        return (isinstance(other, SearchSpace) and self.choices == other.choices
                and self.coupled == other.coupled and self.pairs == other.pairs)

    def __repr__(self):
        return f"SearchSpace({self.name!r}, size={self.size()})"


def _allowed(dp: Decision):
    kind, i = dp
    if kind == "d":
        return STEM_DEPTH_CHOICES if i == 0 else DEPTH_CHOICES
    if kind == "w":
        return tuple(range(len(WIDTH_CHOICES)))
    return EXPAND_CHOICES


def make_space(depths=DEPTH_CHOICES, widths=WIDTH_CHOICES, expands=EXPAND_CHOICES, stem_depths=STEM_DEPTH_CHOICES,
               coupled=False, name="custom") -> SearchSpace:
    """A product space from value lists (widths as multipliers, e.g. [0.8, 1.0])."""
    widx = []
    for v in widths:
        m = [i for i, c in enumerate(WIDTH_CHOICES) if abs(c - float(v)) < 1e-6]
        if not m:
            raise SpaceError(f"space '{name}': width {v} not in {list(WIDTH_CHOICES)}")
        widx.append(m[0])
    ch = {}
    for dp in decision_points():
        kind, i = dp
        ch[dp] = (stem_depths if i == 0 else depths) if kind == "d" else widx if kind == "w" else expands
    return SearchSpace(ch, coupled=coupled, name=name)


# Progressive shrinking stages (Table A1/A2): depth first, then width, then expand ratio.
PS_STAGES = {
    1: dict(widths=(1.0,), expands=(0.35,)),
    2: dict(widths=(0.8, 1.0), expands=(0.35,)),
    3: dict(widths=(0.65, 0.8, 1.0), expands=(0.35,)),
    4: dict(widths=(0.65, 0.8, 1.0), expands=(0.25, 0.35)),
    5: dict(widths=(0.65, 0.8, 1.0), expands=(0.2, 0.25, 0.35)),
}
PS_EPOCHS = {1: 70, 2: 5, 3: 65, 4: 5, 5: 65}


def get_space(name: str) -> SearchSpace:
    """Named spaces: 'ofa' (full), 'compofa' (CompOFA*: D and W coupled), 'ps1'..'ps5'."""
    if name == "ofa":
        return make_space(name="ofa")
    if name == "compofa":
        return make_space(coupled=True, name="compofa")
    if name.startswith("ps") and name[2:].isdigit() and int(name[2:]) in PS_STAGES:
        return make_space(name=name, **PS_STAGES[int(name[2:])])
    raise SpaceError(f"unknown search space {name!r}: expected 'ofa', 'compofa' or 'ps1'..'ps5'")


SPACE_NAMES = ("ofa", "compofa") + tuple(f"ps{i}" for i in PS_STAGES)


def space_from_spec(spec, where="space") -> SearchSpace:
    """A space from a name or {"depth": [...], "width": [...], "expand": [...], "coupled": bool}."""
    if isinstance(spec, str):
        try:
            return get_space(spec)
        except SpaceError as err:
            raise SpaceError(f"{where}: {err}") from None
    if isinstance(spec, dict):
        keys = {"depth", "width", "expand", "stem_depth", "coupled", "name"}
        bad = sorted(set(spec) - keys)
        if bad:
            raise SpaceError(f"{where}: unknown key(s) {bad}; known: {sorted(keys)}")
        try:
            return make_space(depths=spec.get("depth", DEPTH_CHOICES), widths=spec.get("width", WIDTH_CHOICES),
                              expands=spec.get("expand", EXPAND_CHOICES),
                              stem_depths=spec.get("stem_depth", STEM_DEPTH_CHOICES),
                              coupled=spec.get("coupled", False), name=spec.get("name", "custom"))
        except SpaceError as err:
            raise SpaceError(f"{where}: {err}") from None
    raise SpaceError(f"{where}: expected a space name or an object, got {type(spec).__name__}")
