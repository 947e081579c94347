"""Static extraction: one path of the supernet as a plain network with its own copy of the weights.

A :class:`StaticDetector` is built at exactly its arch's widths and holds only its units (the
stem's residual unit included when ``d[0] == 2``), so its graph has no slicing. Its parameters
have the same names as the supernet's, and each is the leading block ``W[:a, :b, ...]`` of the
supernet parameter with that name; so extracting is "slice every parameter to the static
shape", and a static network can load a supernet weight file directly.

Parameters are not registered in nnabla's global parameter scope (see ``elastic.Param``):
``get_parameters()`` returns exactly this network's, and :meth:`StaticDetector.parameter_scope`
puts exactly them (under their names) into a fresh scope, e.g. for ``nnabla.utils.save``::

    with net.parameter_scope():
        x = nn.Variable((1, 3, 128, 128)); hm, wh, reg = net(x)
        nnabla.utils.save.save("net.nnp", contents)   # carries only this network's parameters
"""
from collections import OrderedDict
from contextlib import contextmanager

import nnabla as nn
import numpy as np

from ..space import Arch, SupernetConfig
from .detector import DetectorNet, read_parameters, refuse_backbone_file


def leading_block(array: np.ndarray, shape, key: str = "parameter") -> np.ndarray:
    """``array[:shape[0], :shape[1], ...]``; every dimension must be at least as large."""
    array = np.asarray(array)
    if array.ndim != len(shape) or any(a < s for a, s in zip(array.shape, shape)):
        raise ValueError(f"{key}: shape {array.shape} cannot hold the path's {tuple(shape)}")
    return array[tuple(slice(0, s) for s in shape)].copy()


class StaticDetector(DetectorNet):
    """The detector of one arch, with the ``DetOFASupernet`` call/loss/metrics interface."""

    def __init__(self, config: SupernetConfig, arch):
        arch = Arch.from_dict(arch)
        ch = config.arch_channels(arch)
        widths = {"stem_mid": ch["stem_mid"], "stem_out": ch["stem_out"], "stem_residual": arch.stem_residual,
                  "stage_out": ch["stage_out"], "mid": ch["mid"]}
        DetectorNet.__init__(self, config, widths)
        self._arch = arch

    def copy_from(self, arrays, where="parameters"):
        """Take every parameter as the leading block of the same-named array of ``arrays``
        ({name: array or Variable}, e.g. a supernet's ``get_parameters()``)."""
        refuse_backbone_file(arrays, where)
        for key, p in self.get_parameters().items():
            if key not in arrays:
                raise KeyError(f"{where}: missing parameter '{key}'")
            src = arrays[key]
            src = src.d if isinstance(src, nn.Variable) else src
            p.d = leading_block(src, p.shape, f"{where}: '{key}'")

    def load_parameters(self, path, raise_if_missing=True):
        """Load this path's weights from a static weight file or from a supernet weight file."""
        self.copy_from(read_parameters(path), where=str(path))

    @contextmanager
    def parameter_scope(self):
        """A fresh nnabla parameter scope holding exactly this network's parameters (for export)."""
        with nn.parameter_scope("", OrderedDict()):
            for key, p in self.get_parameters().items():
                nn.parameter.set_parameter(key, p)
            yield

    def extra_repr(self):
        return f"arch={self.arch.to_json()}"


def extract(supernet: DetectorNet, arch=None) -> StaticDetector:
    """The static network of ``arch`` (default: the supernet's current arch) with copies of its weights."""
    arch = supernet.arch if arch is None else Arch.from_dict(arch)
    net = StaticDetector(supernet.config, arch)
    net.copy_from(supernet.get_parameters(), where="supernet")
    return net
