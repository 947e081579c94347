"""Elastic layers: parameters sized for the widest path, a path uses the leading slice.

A layer called with fewer channels than its maximum uses ``W[:out, :in]`` (conv), ``W[:in]``
(deconv) and the first features of BatchNorm, as once-for-all does. Called with the full width
the graph holds no slicing at all, so an extracted static network (whose layers are built at
exactly its path's width) is a plain network made of the same classes.

We do not use NNablaNAS's ``contrib/common/ofa`` dynamic layers: its ``DynamicBatchNorm`` writes
the running statistics of the active slice back only when the *next* graph is built (the last
update before an evaluation or a save is lost, and nothing is written in evaluation mode), and
``DynamicLinear`` passes its in/out sizes swapped. :class:`ElasticBN` also lets a sliced training
graph update copies of the statistics, but commits them when the next graph is built, when the
network's parameters are read and whenever the trainer asks (see its docstring for the contract).

Parameters are :class:`Param`: an ``nnabla_nas.module.Parameter`` (so ``Module.get_parameters``
collects it under its module path) that is *not* registered in nnabla's global parameter scope.
NNablaNAS's own ``Parameter`` registers itself there, which keeps every network ever built alive
and makes ``.nnp`` export carry all of them; ours belong to their module only.
"""
import ctypes
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


_CPU_CONTEXT = []


def host_view(arr, fresh: bool = False) -> np.ndarray:
    """``arr.data`` for a float32 NdArray: a numpy view of its CPU copy, made its current copy.

    nnabla's ``.data``/``.d`` spend ~25 us of CPU per call (a failing relative import, context
    set-up); ``data_ptr`` does the same cast in ~5 us, which matters for the few hundred accesses
    of running statistics per training step. Like ``.data`` the view does not keep the memory
    alive: use it at once. ``fresh``: ``arr`` has never held data (its dtype is not set yet).
    """
    if not fresh and arr.dtype != np.float32:
        return arr.data
    if not _CPU_CONTEXT:
        from nnabla_ext.cpu import context
        _CPU_CONTEXT.append(context())
    ptr = arr.data_ptr(np.float32, _CPU_CONTEXT[0])
    return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), tuple(arr.shape))


def sliced_param(module, name: str, shape: tuple, make):
    """``make(p)``, the graph nodes that take the leading block ``shape`` of parameter ``name``,
    built once and reused by every later graph of ``module`` that needs the same block.

    A supernet builds a new graph every step, and slicing the parameters is most of its nodes
    beyond the static network's (3 for a conv weight or a BatchNorm vector, ~40 us each to build):
    reusing them makes a path's graph hardly more expensive to build than its static network's
    once each layer has seen its widths (at most a few per layer in a search space). A graph's
    forward runs every node above its outputs, so a reused slice is recomputed from the
    parameter's current values, and backward sends its gradient into the parameter as a fresh
    slice would (nnabla only visits nodes reachable from the output). Graphs of one module thus
    share these nodes: run forward and backward of one graph before the next graph's forward,
    as training does. Not reused when ``module`` hands out an unlinked copy of the parameter
    (``nn.no_grad``), in ``nn.auto_forward`` mode (nodes are computed when built), in another
    nnabla context, or after the parameter object was replaced.
    """
    p = getattr(module, name)
    if p is not module.parameters.get(name) or nn.get_auto_forward():
        return make(p)
    ctx = nn.get_current_context()
    cache = module.__dict__.get("_slice_cache")
    if cache is None or cache[0] is not ctx:
        cache = module.__dict__["_slice_cache"] = (ctx, {})
    key = (name, tuple(shape), p.need_grad)
    hit = cache[1].get(key)
    if hit is None or hit[0] is not p:
        hit = cache[1][key] = (p, make(p))
    return hit[1]


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
        w = self.W if full else sliced_param(self, "W", (cout, cin), lambda v: leading_slice(v, cout, cin))
        b = None
        if self.with_bias:
            b = self.b if cout == self.max_out else sliced_param(
                self, "b", (cout,), lambda v: F.slice(v, start=(0,), stop=(cout,)))
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
        w = self.W if cin == self.max_in else sliced_param(self, "W", (cin,), lambda v: leading_slice(v, cin))
        return F.deconvolution(x, w, None, pad=(self.PAD, self.PAD), stride=(self.STRIDE, self.STRIDE))

    def extra_repr(self):
        return f"max_in={self.max_in}, out={self.out_channels}"


class ElasticBN(Mo.Module):
    """BatchNorm over the first C features of ``max_features``.

    Modes: evaluation (running statistics of the slice), training (batch statistics; running
    statistics of the slice updated as nnabla's BatchNormalization updates them, the rest
    untouched) and calibration (batch statistics; the batch mean/variance of every forward are
    handed to :class:`BNStatistics`, see ``bn_calibration``).

    Running statistics in training mode, contract:

    * At full width the graph's BatchNormalization updates ``mean``/``var`` in place on every
      forward, as nnabla's own layer does.
    * With a slice (C < ``max_features``) the graph gets fresh leaf variables holding a copy of
      ``mean[:C]``/``var[:C]`` taken when the graph is built; nnabla updates those leaves in place
      on every forward (a graph forwarded k times, gradient accumulation, applies k updates) and
      the update is *pending* until :meth:`commit_statistics` copies the leaves into the leading
      C features of ``mean``/``var``. This costs no graph node; computing the update in the graph
      cost about 30 nodes per BatchNorm, half the training step of a small path.
    * A commit writes the leaves' current values, and only when they changed since the last
      write: committing again writes nothing, and values set from outside after a commit
      (``recalibrate_bn``, loading weights, ``p.d = ...``) stay unless the graph is forwarded in
      training mode again.
    * Commits happen automatically when this layer builds its next graph (any mode, so a graph
      always starts from every update made so far; ``recalibrate_bn`` builds one before it
      writes) and, for a :class:`~nnabla_nas_detofa.nets.detector.DetectorNet`, in
      ``get_parameters`` (saving, ``extract``, loading and anything else that goes through it see
      committed values); the supernet trainer commits after every training forward/backward.
      Code that reads or writes ``mean.d``/``var.d`` directly after a training forward of a
      sliced graph commits first (``DetectorNet.commit_bn_statistics`` or
      :meth:`commit_statistics`).
    * Only the latest training graph of a layer is tracked: building a new training graph
      commits the previous one and forgets it, so an older graph forwarded again after that
      updates nothing (the trainer builds one graph per step and forwards only that one).
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
        # Training graph with a slice: (C, (mean leaf, var leaf), (values last written back)).
        self._tracked = None

    def _slice(self, name, c):
        # Through a 1-D view: nnabla's CPU Slice of the (1, C, 1, 1) vector itself recurses into the
        # unit axes for every value (~100 us forward + backward for C = 512, 8 us through the view);
        # the three nodes cost nothing to build once sliced_param holds them.
        if c == self.max_features:
            return getattr(self, name)
        return sliced_param(self, name, (c,), lambda v: F.reshape(
            F.slice(F.reshape(v, (self.max_features,)), start=(0,), stop=(c,)), (1, c, 1, 1)))

    def call(self, x):
        c = x.shape[1]
        _check_width("ElasticBN", "features", c, self.max_features)
        self.commit_statistics()  # the graph built now starts from every update made so far
        beta, gamma = self._slice("beta", c), self._slice("gamma", c)
        if self.calibration is not None:
            # mean/var None: nnabla updates throw-away running statistics, ours stay as they are.
            y, bmean, bvar = F.batch_normalization(x, beta, gamma, None, None, decay_rate=self.decay_rate,
                                                   eps=self.eps, batch_stat=True, output_stat=True)
            self.calibration.bind(bmean, bvar, x.size // c)
            return y
        if not self.training:
            return F.batch_normalization(x, beta, gamma, self._slice("mean", c), self._slice("var", c),
                                         decay_rate=self.decay_rate, eps=self.eps, batch_stat=False)
        if c == self.max_features:
            # nnabla updates the running statistics in place, exactly what we want here.
            self._tracked = None
            return F.batch_normalization(x, beta, gamma, self.mean, self.var,
                                         decay_rate=self.decay_rate, eps=self.eps, batch_stat=True)
        # A slice mean[:, :c] would be a computed copy (nnabla refuses it as a running statistic):
        # leaves holding the slice's values take the in-place updates, commit_statistics copies back.
        leaves, written = [], []
        for p in (self.mean, self.var):
            values = np.array(host_view(p.data)[0, :c, 0, 0], dtype=np.float32)
            leaf = nn.Variable((1, c, 1, 1), need_grad=False)
            host_view(leaf.data, fresh=True)[0, :, 0, 0] = values
            leaves.append(leaf)
            written.append(values.tobytes())
        self._tracked = (c, leaves, written)
        return F.batch_normalization(x, beta, gamma, *leaves,
                                     decay_rate=self.decay_rate, eps=self.eps, batch_stat=True)

    def commit_statistics(self) -> bool:
        """Write pending running-statistic updates of the tracked training graph into ``mean``/``var``
        (features [:C]); True when something was written. See the class docstring."""
        if self._tracked is None:
            return False
        c, leaves, written = self._tracked
        wrote = False
        for i, (full, leaf) in enumerate(zip((self.mean, self.var), leaves)):
            now = host_view(leaf.data).reshape(-1).astype(np.float32)  # a copy
            raw = now.tobytes()
            if raw == written[i]:
                continue  # not forwarded since the last write
            host_view(full.data)[0, :c, 0, 0] = now
            written[i] = raw
            wrote = True
        return wrote

    def forget_tracked(self) -> None:
        """Drop the tracked training graph (its statistics were committed or are to be discarded)."""
        self._tracked = None

    @property
    def has_pending_statistics(self) -> bool:
        """Whether the tracked training graph was forwarded since its last commit."""
        if self._tracked is None:
            return False
        _, leaves, written = self._tracked
        return any(host_view(v.data).reshape(-1).astype(np.float32).tobytes() != w for v, w in zip(leaves, written))

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
