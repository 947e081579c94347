"""DetOFA for NNablaNAS: an OFA-ResNet50 + CenterNet detection supernet, path filter, pruning and search.

Importing the package patches the nnabla-nas 0.15.0 packaging defect (see ``compat``) and
registers our networks, runners and data loaders into NNablaNAS's lookup tables (``registry``).
"""
__version__ = "0.1.0"

from .compat import install_fast_absent_imports as _install_fast_absent_imports
from .compat import install_missing_ofa_networks as _install_missing_ofa_networks

_install_missing_ofa_networks()
_install_fast_absent_imports()

from . import registry as _registry  # noqa: E402

_registry.register()
