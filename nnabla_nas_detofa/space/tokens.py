"""Path tokens for the path filter (DetOFA §3.1): one token per layer slot, stem included.

Active unit -> ``W{w}_E{e}`` (its stage's width multiplier, its own expand ratio); dropped unit ->
``SC``. The stem (elastic depth 0 / 2) gets ``STEM_W{w0}_W{w1}`` or ``STEM_SC_W{w0}_W{w1}``.
Block index: 0 for the stem, 1-4 for the stages.
"""
from typing import List, Tuple

from .arch import N_SLOTS, SLOT_STAGE, WIDTH_CHOICES, Arch
from .spaces import SearchSpace

SKIP = "SC"
SEQ_LEN = N_SLOTS + 1
# block index of every token position: stem, then the stage of each slot
BLOCK_INDEX: Tuple[int, ...] = (0,) + tuple(s + 1 for s in SLOT_STAGE)


def _fmt(v: float) -> str:
    return f"{v:g}" if v != 1.0 else "1.0"


def unit_token(width: float, expand: float) -> str:
    return f"W{_fmt(width)}_E{_fmt(expand)}"


def stem_token(residual: bool, w0: int, w1: int) -> str:
    mid = "" if residual else "SC_"
    return f"STEM_{mid}W{_fmt(WIDTH_CHOICES[w0])}_W{_fmt(WIDTH_CHOICES[w1])}"


def tokenize(arch: Arch) -> List[str]:
    arch = Arch.from_dict(arch)
    toks = [stem_token(arch.stem_residual, arch.w[0], arch.w[1])]
    for k in range(N_SLOTS):
        if arch.slot_active(k):
            toks.append(unit_token(WIDTH_CHOICES[arch.w[2 + SLOT_STAGE[k]]], arch.e[k]))
        else:
            toks.append(SKIP)
    return toks


def vocabulary(space: SearchSpace) -> List[str]:
    """Every token a path of ``space`` can produce, in a fixed order (index 0 is reserved for
    unknown tokens, so a filter trained on one space can score paths of a wider one)."""
    toks = ["<unk>", SKIP]
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
