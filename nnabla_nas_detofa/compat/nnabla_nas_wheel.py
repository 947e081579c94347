"""Make ``import nnabla_nas.contrib`` / ``import nnabla_nas.runner`` work with the 0.15.0 wheel.

The released wheel omits ``nnabla_nas/contrib/classification/ofa/networks/`` (upstream has no
``__init__.py`` there, so setuptools skipped it), yet ``nnabla_nas/contrib/__init__.py`` imports
``ofa_mbv3, ofa_xception, ofa_resnet50`` from it.  We register stand-in modules for exactly the
missing names, and only when the folder is really absent, so a fixed wheel is used untouched.
Using one of the stand-ins (``SearchNet``/``TrainNet``) raises an error that says why.
"""
import importlib.util
import os
import sys
import types

PACKAGE = "nnabla_nas.contrib.classification.ofa.networks"
NETWORKS = ("ofa_mbv3", "ofa_xception", "ofa_resnet50")


def missing_ofa_networks():
    """True when the installed nnabla_nas lacks the OFA networks folder."""
    spec = importlib.util.find_spec("nnabla_nas")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    return not os.path.isdir(os.path.join(root, *PACKAGE.split(".")[1:]))


class _UnshippedNetwork(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(
            f"{self.__name__}.{attr} is not available: the nnabla-nas 0.15.0 wheel does not ship "
            f"'{PACKAGE}'. Use the network 'detofa_resnet50' of nnabla_nas_detofa instead.")


def install_missing_ofa_networks():
    """Register stand-ins for the unshipped modules. Returns the names registered."""
    if PACKAGE in sys.modules or not missing_ofa_networks():
        return []
    pkg = types.ModuleType(PACKAGE, "stand-in for a folder missing from the nnabla-nas 0.15.0 wheel")
    pkg.__path__ = []
    pkg.__package__ = PACKAGE
    registered = [PACKAGE]
    for name in NETWORKS:
        full = f"{PACKAGE}.{name}"
        mod = _UnshippedNetwork(full, f"stand-in: {name} is not shipped by the nnabla-nas 0.15.0 wheel")
        mod.__package__ = PACKAGE
        sys.modules[full] = mod
        setattr(pkg, name, mod)
        registered.append(full)
    sys.modules[PACKAGE] = pkg
    return registered
