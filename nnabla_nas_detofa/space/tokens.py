"""Path tokens for the path filter (DetOFA §3.1): one token per layer slot, stem included.

Active unit -> ``W{w}_E{e}`` (its stage's width multiplier, its own expand ratio); dropped unit ->
``SC``. The stem (elastic depth 0 / 2) gets ``STEM_W{w0}_W{w1}`` or ``STEM_SC_W{w0}_W{w1}``.
Block index: 0 for the stem, 1-4 for the stages.

:class:`Tokenizer` is the one implementation: a batch of archs becomes an (N, 19) array of
vocabulary indices through lookup tables built from the token strings; ``tokenize`` (strings, one
arch) reads the same tables.
"""
from typing import List, Sequence, Tuple

import numpy as np

from .arch import BASE_DEPTHS, EXPAND_CHOICES, N_SLOTS, SLOT_POS, SLOT_STAGE, WIDTH_CHOICES, Arch
from .spaces import SearchSpace

SKIP = "SC"
UNKNOWN = "<unk>"
SEQ_LEN = N_SLOTS + 1
# block index of every token position: stem, then the stage of each slot
BLOCK_INDEX: Tuple[int, ...] = (0,) + tuple(s + 1 for s in SLOT_STAGE)


class TokenError(ValueError):
    pass


def _fmt(v: float) -> str:
    return f"{v:g}" if v != 1.0 else "1.0"


def unit_token(width: float, expand: float) -> str:
    return f"W{_fmt(width)}_E{_fmt(expand)}"


def stem_token(residual: bool, w0: int, w1: int) -> str:
    mid = "" if residual else "SC_"
    return f"STEM_{mid}W{_fmt(WIDTH_CHOICES[w0])}_W{_fmt(WIDTH_CHOICES[w1])}"


def vocabulary(space: SearchSpace) -> List[str]:
    """Every token a path of ``space`` can produce, in a fixed order (index 0 is reserved for
    unknown tokens, so a filter trained on one space can score paths of a wider one)."""
    toks = [UNKNOWN, SKIP]
    ch = space.choices
    for d0 in ch[("d", 0)]:
        for w0 in ch[("w", 0)]:
            for w1 in ch[("w", 1)]:
                toks.append(stem_token(d0 == 2, w0, w1))
    widths = sorted({w for j in range(2, 6) for w in ch[("w", j)]})
    expands = sorted({e for k in range(N_SLOTS) for e in ch[("e", k)]})
    for w in widths:
        for e in expands:
            toks.append(unit_token(WIDTH_CHOICES[w], e))
    return list(dict.fromkeys(toks))


def all_tokens() -> List[str]:
    """The vocabulary of every possible path (all choices of every decision)."""
    from .spaces import get_space
    return vocabulary(get_space("ofa"))


class Tokenizer:
    """Archs -> (N, 19) int32 vocabulary indices (0 = a token the vocabulary lacks)."""

    def __init__(self, vocab: Sequence[str]):
        vocab = tuple(vocab)
        if not vocab or vocab[0] != UNKNOWN:
            raise TokenError(f"vocabulary must start with {UNKNOWN!r}")
        if len(set(vocab)) != len(vocab):
            raise TokenError("vocabulary has duplicate tokens")
        self.vocab = vocab
        index = {t: i for i, t in enumerate(vocab)}
        nw, ne = len(WIDTH_CHOICES), len(EXPAND_CHOICES)
        self.stem = np.zeros((2, nw, nw), np.int32)
        for r in range(2):
            for w0 in range(nw):
                for w1 in range(nw):
                    self.stem[r, w0, w1] = index.get(stem_token(bool(r), w0, w1), 0)
        self.unit = np.zeros((nw, ne), np.int32)
        for w in range(nw):
            for e, ev in enumerate(EXPAND_CHOICES):
                self.unit[w, e] = index.get(unit_token(WIDTH_CHOICES[w], ev), 0)
        self.skip = index.get(SKIP, 0)
        self._expand = np.array(EXPAND_CHOICES)
        self._slot_stage = np.array(SLOT_STAGE)
        self._slot_pos = np.array(SLOT_POS)
        self._base = np.array(BASE_DEPTHS)

    @classmethod
    def from_space(cls, space: SearchSpace) -> "Tokenizer":
        return cls(vocabulary(space))

    def __len__(self):
        return len(self.vocab)

    def ids(self, archs: Sequence) -> np.ndarray:
        archs = [a if isinstance(a, Arch) else Arch.from_dict(a, where=f"arch {i}") for i, a in enumerate(archs)]
        n = len(archs)
        if n == 0:
            return np.zeros((0, SEQ_LEN), np.int32)
        d = np.array([a.d for a in archs], np.int64)
        w = np.array([a.w for a in archs], np.int64)
        e = np.searchsorted(self._expand, np.array([a.e for a in archs], np.float64))
        out = np.empty((n, SEQ_LEN), np.int32)
        out[:, 0] = self.stem[(d[:, 0] == 2).astype(np.int64), w[:, 0], w[:, 1]]
        slot_w = w[:, 2 + self._slot_stage]
        depth = self._base[self._slot_stage][None, :] + d[:, 1 + self._slot_stage]
        active = self._slot_pos[None, :] < depth
        out[:, 1:] = np.where(active, self.unit[slot_w, e], self.skip)
        return out


_FULL = []


def tokenize(arch: Arch) -> List[str]:
    """The 19 token strings of one arch."""
    if not _FULL:
        _FULL.append(Tokenizer(all_tokens()))
    tok = _FULL[0]
    return [tok.vocab[i] for i in tok.ids([Arch.from_dict(arch)])[0]]
