"""Work-arounds for defects of the released host packages (kept small and tested).

``ensure_host()`` is called by every module of ours that imports NNablaNAS's ``contrib`` or
``runner`` (which the 0.15.0 wheel cannot import on its own), before that import.
"""
from .nnabla_imports import install_fast_absent_imports
from .nnabla_nas_wheel import install_missing_ofa_networks, missing_ofa_networks

_DONE = []


def ensure_host():
    """Install both work-arounds once: the stand-ins for the folder the nnabla-nas 0.15.0 wheel
    lacks, and fast failure for nnabla's per-call imports of absent modules."""
    if not _DONE:
        install_missing_ofa_networks()
        install_fast_absent_imports()
        _DONE.append(True)


__all__ = ["ensure_host", "install_fast_absent_imports", "install_missing_ofa_networks", "missing_ofa_networks"]
