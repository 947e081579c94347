"""Fast failure for imports that nnabla 1.39 attempts, and fails, on every function call.

nnabla's compiled ``Function.__call__`` (and ``Variable.d``) run relative imports of
``nnabla.nnabla``, ``nnabla.nnabla.variable``, ``nnabla.gc`` and ``nnabla.nnabla_ext`` that do
not exist and fall back. A failed import is not cached, so each graph node costs several
file-system searches (about a third of the time to build a detector graph on CPU, which a
supernet rebuilds every step). Python's own negative cache, a ``None`` entry in ``sys.modules``,
makes exactly those imports fail at once with ModuleNotFoundError; the outcome is unchanged.
"""
import importlib.util
import sys

NAMES = ("nnabla.nnabla", "nnabla.nnabla.variable", "nnabla.gc", "nnabla.nnabla_ext")


def _absent(names):
    """Those of ``names`` that the import system cannot find (checked once, the slow way)."""
    out = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(name)
    return out


def install_fast_absent_imports():
    """Mark those of ``NAMES`` that really are absent as such in ``sys.modules``; returns them."""
    names = [n for n in NAMES if n not in sys.modules]
    names = _absent(names)
    for name in names:
        sys.modules[name] = None
    return names
