"""Work-arounds for defects of the released host packages (kept small and tested)."""
from .nnabla_imports import install_fast_absent_imports  # noqa: F401
from .nnabla_nas_wheel import install_missing_ofa_networks, missing_ofa_networks  # noqa: F401
