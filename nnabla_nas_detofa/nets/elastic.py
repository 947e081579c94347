"""Elastic layers: parameters sized for the widest path, a path uses the leading slice.

A layer called with fewer channels than its maximum uses ``W[:out, :in]`` (conv), ``W[:in]``
(deconv) and the first features of BatchNorm, as once-for-all does. Called with the full width
the graph holds no slicing at all, so an extracted static network (whose layers are built at
exactly its path's width) is a plain network made of the same classes.

We do not use NNablaNAS's ``contrib/common/ofa`` dynamic layers: its ``DynamicBatchNorm`` writes
the running statistics of the active slice back only when the *next* graph is built (the last
update before an evaluation or a save is lost, and nothing is written in evaluation mode), and
``DynamicLinear`` passes its in/out sizes swapped.

Parameters are :class:`Param`: an ``nnabla_nas.module.Parameter`` (so ``Module.get_parameters``
collects it under its module path) that is *not* registered in nnabla's global parameter scope.
NNablaNAS's own ``Parameter`` registers itself there, which keeps every network ever built alive
and makes ``.nnp`` export carry all of them; ours belong to their module only.
"""
import math

import nnabla as nn
import nnabla.functions as F
import numpy as np
from nnabla.initializer import ConstantInitializer, NormalInitializer

import nnabla_nas.module as Mo


class Param(Mo.Parameter):
    """A module parameter that stays out of nnabla's global parameter scope."""

    def __init__(self, *args, **kwargs):  # noqa: D401 - skip Mo.Parameter's global registration
        nn.Variable.__init__(self)


def he_normal_fan_out(out_channels: int, kernel: int) -> NormalInitializer:
    """once-for-all's ResNet initialisation: N(0, 2 / (k * k * out))."""
    return NormalInitializer(math.sqrt(2.0 / (kernel * kernel * out_channels)))


def leading_slice(v, n0: int, n1: int = None):
    """``v[:n0, :n1]`` with every further axis whole, taken through a 2-D view.

    nnabla's CPU Slice is about 100x slower on a 4-D weight than on the same data seen as 2-D
    (measured: 78 ms vs 0.5 ms for 1328x272 of a 2048x1024x1x1 weight); since the trailing axes
    are whole, the leading block of (d0, d1 * rest) is the same data.
    """
    shape = tuple(v.shape)
    n1 = shape[1] if n1 is None else n1
    rest = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    flat = F.reshape(v, (shape[0], shape[1] * rest))
    block = F.slice(flat, start=(0, 0), stop=(n0, n1 * rest))
    return F.reshape(block, (n0, n1) + shape[2:])


def _check_width(layer: str, what: str, active: int, maximum: int):
    if not 1 <= active <= maximum:
        raise ValueError(f"{layer}: {what} {active} outside 1..{maximum}")


class ElasticConv(Mo.Module):
    """2-D convolution, 'same' padding; uses ``W[:out, :in]`` (and ``b[:out]``)."""

    def __init__(self, max_in: int, max_out: int, kernel: int, stride: int = 1, with_bias: bool = False,
                 w_init=None, b_init: float = 0.0):
        Mo.Module.__init__(self)
        self.max_in, self.max_out, self.kernel, self.stride = max_in, max_out, kernel, stride
        self.W = Param((max_out, max_in, kernel, kernel), initializer=w_init or he_normal_fan_out(max_out, kernel))
        self.with_bias = with_bias
        if with_bias:
            self.b = Param((max_out,), initializer=ConstantInitializer(b_init))

    def call(self, x, out_channels: int = None):
        cin, cout = x.shape[1], out_channels or self.max_out
        _check_width("ElasticConv", "input channels", cin, self.max_in)
        _check_width("ElasticConv", "output channels", cout, self.max_out)
        full = (cin, cout) == (self.max_in, self.max_out)
        w = self.W if full else leading_slice(self.W, cout, cin)
        b = None
        if self.with_bias:
            b = self.b if cout == self.max_out else F.slice(self.b, start=(0,), stop=(cout,))
        p = self.kernel // 2
        return F.convolution(x, w, b, pad=(p, p), stride=(self.stride, self.stride))

    def extra_repr(self):
        return f"max_in={self.max_in}, max_out={self.max_out}, kernel={self.kernel}, stride={self.stride}"


class ElasticDeconv(Mo.Module):
    """4x4 stride-2 pad-1 transposed convolution (doubles H and W), no bias; uses ``W[:in]``."""

    KERNEL, STRIDE, PAD = 4, 2, 1

    def __init__(self, max_in: int, out_channels: int, w_init=None):
        Mo.Module.__init__(self)
        self.max_in, self.out_channels = max_in, out_channels
        # CenterNet (msra_resnet) draws its up-convolution weights from N(0, 0.001^2); BN follows.
        self.W = Param((max_in, out_channels, self.KERNEL, self.KERNEL), initializer=w_init or NormalInitializer(1e-3))

    def call(self, x):
        cin = x.shape[1]
        _check_width("ElasticDeconv", "input channels", cin, self.max_in)
        w = self.W if cin == self.max_in else leading_slice(self.W, cin)
        return F.deconvolution(x, w, None, pad=(self.PAD, self.PAD), stride=(self.STRIDE, self.STRIDE))

    def extra_repr(self):
        return f"max_in={self.max_in}, out={self.out_channels}"


class ElasticBN(Mo.Module):
    """BatchNorm over the first C features of ``max_features``.

    Modes: evaluation (running statistics of the slice), training (batch statistics; running
    statistics of the slice updated as nnabla's BatchNormalization updates them, the rest
    untouched) and calibration (batch statistics; the batch mean/variance of every forward are
    handed to :class:`BNStatistics`, see ``bn_calibration``).
    """

    def __init__(self, max_features: int, decay_rate: float = 0.9, eps: float = 1e-5):
        Mo.Module.__init__(self)
        shape = (1, max_features, 1, 1)
        self.max_features, self.decay_rate, self.eps = max_features, decay_rate, eps
        self.beta = Param(shape, initializer=ConstantInitializer(0.0))
        self.gamma = Param(shape, initializer=ConstantInitializer(1.0))
        self.mean = Param(shape, need_grad=False, initializer=ConstantInitializer(0.0))
        self.var = Param(shape, need_grad=False, initializer=ConstantInitializer(1.0))
        self.calibration = None  # a BNStatistics while recalibrating

    def _slice(self, p, c):
        # Direct 4-D Slice: for at most a few thousand values it is cheaper than the extra graph
        # nodes of leading_slice (each nnabla call costs ~30 us when the graph is built).
        return p if c == self.max_features else F.slice(p, start=(0, 0, 0, 0), stop=(1, c, 1, 1))

    def call(self, x):
        c = x.shape[1]
        _check_width("ElasticBN", "features", c, self.max_features)
        beta, gamma = self._slice(self.beta, c), self._slice(self.gamma, c)
        if self.calibration is not None:
            # mean/var None: nnabla updates throw-away running statistics, ours stay as they are.
            y, bmean, bvar = F.batch_normalization(x, beta, gamma, None, None, decay_rate=self.decay_rate,
                                                   eps=self.eps, batch_stat=True, output_stat=True)
            self.calibration.bind(bmean, bvar, x.size // c)
            return y
        if not self.training:
            return F.batch_normalization(x, beta, gamma, self._slice(self.mean, c), self._slice(self.var, c),
                                         decay_rate=self.decay_rate, eps=self.eps, batch_stat=False)
        if c == self.max_features:
            # nnabla updates the running statistics in place, exactly what we want here.
            return F.batch_normalization(x, beta, gamma, self.mean, self.var,
                                         decay_rate=self.decay_rate, eps=self.eps, batch_stat=True)
        written = self._update_slice_statistics(x, c)
        # Only ties the writes into the graph: the leading c values are beta's, gradient included.
        beta = self._slice(F.concatenate(beta, *written, axis=1), c)
        return F.batch_normalization(x, beta, gamma, None, None,
                                     decay_rate=self.decay_rate, eps=self.eps, batch_stat=True)

    def _update_slice_statistics(self, x, c):
        """Graph that writes the updated running statistics of features [:c] into the full ones.

        nnabla updates the mean/var *inputs* of a training-mode BatchNormalization in place; a
        slice ``mean[:, :c]`` is a copy, so its update would be lost (and nnabla refuses a
        computed mean/var there). Instead the update is computed in the graph and written with
        ``F.assign``; the caller makes the normalisation depend on the assigned variables, so
        every forward of the graph performs the write, once.
        """
        # Share x's buffer without copying; need_grad=False keeps the statistics out of backprop.
        xs = F.reshape(x, x.shape, inplace=True)
        xs.need_grad = False
        axes = (0, 2, 3)
        n = x.size // c
        bmean = F.mean(xs, axis=axes, keepdims=True)
        bvar = F.mean(F.pow_scalar(xs - bmean, 2.0), axis=axes, keepdims=True)
        # nnabla's running variance uses the unbiased batch variance.
        bvar = bvar * (n / max(n - 1, 1))
        d = self.decay_rate
        stats = []
        for full, batch in ((self.mean, bmean), (self.var, bvar)):
            rest = F.slice(full, start=(0, c, 0, 0), stop=(1, self.max_features, 1, 1))
            new = F.concatenate(self._slice(full, c) * d + batch * (1.0 - d), rest, axis=1)
            stats.append(F.assign(full, new))
        return stats

    def extra_repr(self):
        return f"max_features={self.max_features}, decay_rate={self.decay_rate}, eps={self.eps}"


class BNStatistics:
    """Exact per-feature mean and (biased) variance over every sample of several batches.

    Batches are merged with the parallel-variance formula (Chan et al.) in float64, so the
    result is the statistic of the union of the batches, not an average of batch statistics.
    """

    def __init__(self):
        self.count = 0
        self.mean = None
        self.m2 = None
        self._vars = None

    def bind(self, bmean, bvar, n: int):
        """Remember the batch-statistic variables of the graph just built (``n`` values a feature)."""
        bmean.persistent = True
        bvar.persistent = True
        self._vars = (bmean, bvar, n)

    def unbind(self):
        self._vars = None

    @property
    def bound(self) -> bool:
        return self._vars is not None

    def variables(self):
        return self._vars[:2]

    def accumulate(self):
        """Add the batch just forwarded."""
        bmean, bvar, n = self._vars
        m = np.asarray(bmean.d, dtype=np.float64).reshape(-1)
        m2 = np.asarray(bvar.d, dtype=np.float64).reshape(-1) * n
        if self.mean is None:
            self.count, self.mean, self.m2 = n, m, m2
            return
        total = self.count + n
        delta = m - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total

    def result(self):
        """(mean, variance) as float32 vectors, or None when nothing was accumulated."""
        if self.mean is None:
            return None
        return self.mean.astype(np.float32), (self.m2 / self.count).astype(np.float32)
