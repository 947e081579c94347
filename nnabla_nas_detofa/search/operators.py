"""Variation operators on arch dicts: genes of a space, mutation, crossover, feasible sampling.

A *gene* is one decision of a space as the search changes it: a stem / stage depth, a width
index, one unit slot's expand ratio; in a coupled space (CompOFA*) each stage's (depth, width)
pair is one gene whose options are the space's pairs. Options come from ``space.choices`` (and
``space.pairs`` when ``space.coupled``); a space that only offers ``contains`` and ``sample``
(a pruned space) is varied over the full OFA choices, and every candidate is re-drawn until
``space.contains`` and every constraint hold (``Feasibility``), with a cap and a clear error.
"""
import random
from typing import List, NamedTuple, Sequence, Tuple

from ..space.arch import N_SLOTS, N_STAGES, Arch
from ..space.layers import _with_choices, decision_choices
from ..space.spaces import _allowed
from .constraints import Feasibility, SearchError

DEFAULT_MAX_TRIES = 1000


class Gene(NamedTuple):
    name: str
    fields: Tuple[Tuple[str, int], ...]   # ("d", i) / ("w", j) / ("e", k) positions it sets
    options: Tuple[Tuple, ...]            # one value per field, for each option
    slot: int = -1                        # expand genes: the unit slot (inactive when dropped)

    def value(self, arch: Arch) -> Tuple:
        return tuple(getattr(arch, kind)[i] for kind, i in self.fields)

    def active(self, arch: Arch) -> bool:
        return self.slot < 0 or arch.key()[1][self.slot] is not None


def _canonical(space, ch):
    """Choices as the exact values an Arch holds (ints, the EXPAND_CHOICES floats); a value that
    no arch may take is an error naming the decision."""
    out = {}
    for (kind, i), vals in ch.items():
        allowed = _allowed((kind, i))
        canon = []
        for v in vals:
            m = [a for a in allowed if not isinstance(v, bool) and isinstance(v, (int, float)) and abs(v - a) < 1e-6]
            if not m:
                raise SearchError(f"space {getattr(space, 'name', type(space).__name__)!r}: decision "
                                  f"{kind}{i} has choice {v!r}, not one of {list(allowed)}")
            canon.append(m[0])
        out[(kind, i)] = tuple(dict.fromkeys(canon))
    return out


class SampledSpace:
    """A space offered as ``contains`` + ``sampler().sample(rng).arch`` (``pruning.PrunedSpace``:
    exact uniform draws from Ã) seen as the search sees a space: ``sample(rng)``, ``contains``,
    and the choices (and CompOFA* pairs) of its base space ``space.space`` for mutation."""

    def __init__(self, space):
        self.inner = space
        self._sampler = space.sampler()
        base = getattr(space, "space", None)
        self.name = f"{getattr(base, 'name', 'space')}/pruned" if base is not None else type(space).__name__
        for attr in ("choices", "coupled", "pairs"):
            if hasattr(base, attr):
                setattr(self, attr, getattr(base, attr))

    def sample(self, rng):
        return self._sampler.sample(rng).arch

    def contains(self, arch) -> bool:
        return self.inner.contains(arch)


def searchable(space):
    """``space`` itself when it has ``sample(rng)`` and ``contains(arch)``; a ``SampledSpace`` for
    one that samples through ``sampler()`` (the pruned space); else a SearchError."""
    if callable(getattr(space, "sample", None)) and callable(getattr(space, "contains", None)):
        return space
    if callable(getattr(space, "sampler", None)) and callable(getattr(space, "contains", None)):
        return SampledSpace(space)
    raise SearchError(f"space {space!r}: a search space needs sample(rng) (or sampler()) and contains(arch)")


def genes(space) -> List[Gene]:
    """The genes of ``space``, stem first, then stages, then the 18 expand slots."""
    ch = _canonical(space, decision_choices(space))
    space = _with_choices(space) or space   # a pruned space: its base space's coupling
    coupled = bool(getattr(space, "coupled", False)) and isinstance(getattr(space, "pairs", None), dict)
    out = [Gene("d0", (("d", 0),), tuple((v,) for v in ch[("d", 0)])),
           Gene("w0", (("w", 0),), tuple((v,) for v in ch[("w", 0)])),
           Gene("w1", (("w", 1),), tuple((v,) for v in ch[("w", 1)]))]
    for s in range(N_STAGES):
        if coupled:
            out.append(Gene(f"dw{s + 1}", (("d", s + 1), ("w", s + 2)),
                            tuple((int(p[0]), int(p[1])) for p in space.pairs[s])))
        else:
            out.append(Gene(f"d{s + 1}", (("d", s + 1),), tuple((v,) for v in ch[("d", s + 1)])))
            out.append(Gene(f"w{s + 2}", (("w", s + 2),), tuple((v,) for v in ch[("w", s + 2)])))
    out += [Gene(f"e{k}", (("e", k),), tuple((v,) for v in ch[("e", k)]), slot=k) for k in range(N_SLOTS)]
    return out


def apply_genes(arch: Arch, changes: Sequence[Tuple[Gene, Tuple]]) -> Arch:
    """``arch`` with each gene set to its new option (unchecked here: callers test feasibility)."""
    parts = {"d": list(arch.d), "e": list(arch.e), "w": list(arch.w)}
    for gene, option in changes:
        for (kind, i), v in zip(gene.fields, option):
            parts[kind][i] = v
    # every value comes from a validated arch or from canonical choices (``genes``)
    return Arch.trusted(tuple(parts["d"]), tuple(parts["e"]), tuple(parts["w"]))


def differing_genes(a: Arch, b: Arch, gene_list: Sequence[Gene]) -> List[str]:
    """Names of the genes in which ``a`` and ``b`` differ (expand slots only where both use them)."""
    return [g.name for g in gene_list if g.active(a) and g.active(b) and g.value(a) != g.value(b)]


def pick_distinct(rng: random.Random, n: int, k: int) -> List[int]:
    """``k`` distinct indices of ``range(n)`` uniformly at random (a partial Fisher-Yates shuffle;
    ``rng.sample`` costs ~4x more, and a search draws one tournament per child)."""
    idx = list(range(n))
    for i in range(k):
        j = i + int(rng.random() * (n - i))
        idx[i], idx[j] = idx[j], idx[i]
    return idx[:k]


def _reject(what: str, tries: int, feas: Feasibility, detail: str = "") -> SearchError:
    return SearchError(f"{what}: no candidate met the space and constraints in {tries} draws{detail} "
                       f"({feas.explain()})")


def sample_feasible(space, feas: Feasibility, rng: random.Random, n: int, max_tries: int = None,
                    mode: str = None) -> List[Arch]:
    """``n`` paths from ``space.sample(rng)`` that meet every constraint (duplicates allowed)."""
    max_tries = max_tries or max(DEFAULT_MAX_TRIES, 100 * n)
    feas.start()
    out, tries = [], 0
    while len(out) < n:
        if tries >= max_tries:
            raise SearchError(f"initial population: only {len(out)} of {n} samples of space "
                              f"{getattr(space, 'name', type(space).__name__)!r} met the constraints in "
                              f"{tries} draws ({feas.explain()})")
        tries += 1
        a = space.sample(rng) if mode is None else space.sample(rng, mode=mode)
        a = Arch.from_dict(a)
        if feas.ok(a):
            out.append(a)
    return out


def mutate(parent: Arch, gene_list: Sequence[Gene], feas: Feasibility, rng: random.Random, max_changes: int = 1,
           max_tries: int = DEFAULT_MAX_TRIES) -> Arch:
    """A child that differs from ``parent`` in 1..``max_changes`` genes (how many: uniform), each
    set to another of its options; re-drawn until the child is feasible (regularized evolution)."""
    movable = [g for g in gene_list if len(g.options) > 1]
    if not movable:
        raise SearchError("mutation: the space has no decision with two or more choices")
    used = parent.key()[1]
    active = [g for g in movable if g.slot < 0 or used[g.slot] is not None]
    feas.start()
    for _ in range(max_tries):
        k = 1 + int(rng.random() * min(max_changes, len(active)))
        changes = []
        for i in pick_distinct(rng, len(active), k):
            g = active[i]
            cur = g.value(parent)
            changes.append((g, rng.choice([o for o in g.options if o != cur])))
        child = apply_genes(parent, changes)
        if child != parent and feas.ok(child):
            return child
    raise _reject("mutation", max_tries, feas, f" from parent {parent}")


def resample_mutate(parent: Arch, gene_list: Sequence[Gene], feas: Feasibility, rng: random.Random,
                    prob: float = 0.1, max_tries: int = DEFAULT_MAX_TRIES) -> Arch:
    """once-for-all's mutation: every gene re-drawn from its options with probability ``prob``
    (the child may equal the parent); re-drawn until feasible."""
    feas.start()
    for _ in range(max_tries):
        changes = [(g, rng.choice(g.options)) for g in gene_list if rng.random() < prob]
        child = apply_genes(parent, changes) if changes else parent
        if feas.ok(child):
            return child
    raise _reject("mutation", max_tries, feas, f" from parent {parent}")


def crossover(a: Arch, b: Arch, gene_list: Sequence[Gene], feas: Feasibility, rng: random.Random,
              max_tries: int = DEFAULT_MAX_TRIES) -> Arch:
    """once-for-all's crossover: every gene taken from ``a`` or ``b`` with probability 1/2 (a
    coupled stage takes its (depth, width) pair whole); re-drawn until feasible."""
    feas.start()
    for _ in range(max_tries):
        child = apply_genes(a, [(g, g.value(b)) for g in gene_list if rng.random() < 0.5])
        if feas.ok(child):
            return child
    raise _reject("crossover", max_tries, feas, f" of {a} and {b}")
