"""Fast failure for imports that nnabla 1.39 attempts, and fails, on every function call.

nnabla's compiled ``Function.__call__`` runs relative imports of ``nnabla.nnabla``,
``nnabla.nnabla.variable`` and ``nnabla.gc`` that do not exist and falls back. A failed import is
not cached, so each graph node costs several file-system searches (about a third of the time to
build a detector graph on CPU, which a supernet rebuilds every step). A meta-path finder answers
"no such module" for exactly those names at once; the outcome of every import is unchanged.
"""
import importlib.util
import sys

NAMES = ("nnabla.nnabla", "nnabla.nnabla.variable", "nnabla.gc")


class _AbsentModules:
    def __init__(self, names):
        self.names = frozenset(names)

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


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
    """Install the finder (once) for those of ``NAMES`` that really are absent; returns them."""
    if any(isinstance(f, _AbsentModules) for f in sys.meta_path):
        return []
    names = [n for n in _absent(NAMES) if n not in sys.modules]
    if names:
        sys.meta_path.insert(0, _AbsentModules(names))
    return names
