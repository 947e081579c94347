"""Building blocks of the detector (OFA-ResNet50 units, CenterNet up-convolutions and heads).

Each block is built for maximum widths and called with the active ones (``None`` = maximum;
widths go as keyword arguments: ``Module.__call__`` records the shape of every positional one),
so the supernet and an extracted static path share this code: the static path builds its
blocks at exactly its own widths and always runs them at full width.
"""
import math
import nnabla.functions as F
from nnabla.initializer import NormalInitializer, UniformInitializer

import nnabla_nas.module as Mo

from .elastic import ElasticBN, ElasticConv, ElasticDeconv


class ConvBN(Mo.Module):
    """conv (no bias) -> BN -> optional ReLU (``relu6``: ReLU6 instead)."""

    def __init__(self, max_in, max_out, kernel, stride=1, relu=True, bn_decay=0.9, bn_eps=1e-5, relu6=False):
        Mo.Module.__init__(self)
        self.conv = ElasticConv(max_in, max_out, kernel, stride)
        self.bn = ElasticBN(max_out, bn_decay, bn_eps)
        self.relu, self.relu6 = relu, relu6

    def call(self, x, out_channels=None):
        y = self.bn(self.conv(x, out_channels=out_channels))
        if not self.relu:
            return y
        return F.relu6(y) if self.relu6 else F.relu(y)


class Stem(Mo.Module):
    """ResNet50-D stem: 3x3 s2 conv, optional residual 3x3 unit, 3x3 conv (max-pool is the caller's).

    ``residual=False`` builds no residual unit (a static path whose stem depth is 0). ``activation``:
    'relu' (once-for-all) or 'relu6' (NNablaNAS's ofa_resnet50) after each of the three convs.
    """

    def __init__(self, max_mid, max_out, residual=True, bn_decay=0.9, bn_eps=1e-5, activation="relu"):
        Mo.Module.__init__(self)
        if activation not in ("relu", "relu6"):
            raise ValueError(f"stem activation {activation!r}: expected 'relu' or 'relu6'")
        bn = dict(bn_decay=bn_decay, bn_eps=bn_eps, relu6=activation == "relu6")
        self.conv1 = ConvBN(3, max_mid, 3, stride=2, **bn)
        if residual:
            self.res = ConvBN(max_mid, max_mid, 3, **bn)
        self.conv3 = ConvBN(max_mid, max_out, 3, **bn)

    def call(self, x, mid=None, out=None, residual=True):
        x = self.conv1(x, out_channels=mid)
        if residual:
            # once-for-all's ResidualBlock: conv-BN-ReLU plus identity, no activation after the sum.
            x = self.res(x, out_channels=x.shape[1]) + x
        return self.conv3(x, out_channels=out)


class Bottleneck(Mo.Module):
    """ResNet bottleneck: 1x1 -> 3x3 (carries the stride) -> 1x1, plus shortcut, then ReLU.

    The first unit of a stage has an avg-pool (kernel = stride, ceil mode) + 1x1 conv + BN
    shortcut (ResNet-D); the other units add the identity.
    """

    def __init__(self, max_in, max_mid, max_out, stride=1, downsample=False, bn_decay=0.9, bn_eps=1e-5):
        Mo.Module.__init__(self)
        bn = dict(bn_decay=bn_decay, bn_eps=bn_eps)
        self.stride, self.downsample = stride, downsample
        self.conv1 = ConvBN(max_in, max_mid, 1, **bn)
        self.conv2 = ConvBN(max_mid, max_mid, 3, stride=stride, **bn)
        self.conv3 = ConvBN(max_mid, max_out, 1, relu=False, **bn)
        if downsample:
            self.shortcut = ConvBN(max_in, max_out, 1, relu=False, **bn)
        elif stride != 1 or max_in != max_out:
            raise ValueError("a bottleneck without downsample shortcut needs stride 1 and in == out")

    def call(self, x, mid=None, out=None):
        y = self.conv1(x, out_channels=mid)
        y = self.conv2(y, out_channels=mid)
        y = self.conv3(y, out_channels=out)
        if self.downsample:
            s = x
            if self.stride > 1:
                k = (self.stride, self.stride)
                s = F.average_pooling(s, k, k, ignore_border=False, including_pad=False)
            s = self.shortcut(s, out_channels=out)
        else:
            s = x
        return F.relu(y + s)


class DeconvBN(Mo.Module):
    """CenterNet up-convolution: 4x4 s2 deconv (no bias) -> BN -> ReLU."""

    def __init__(self, max_in, out_channels, bn_decay=0.9, bn_eps=1e-5):
        Mo.Module.__init__(self)
        self.deconv = ElasticDeconv(max_in, out_channels)
        self.bn = ElasticBN(out_channels, bn_decay, bn_eps)

    def call(self, x):
        return F.relu(self.bn(self.deconv(x)))


class Head(Mo.Module):
    """CenterNet head: 3x3 conv (bias) -> ReLU -> 1x1 conv (bias).

    As in CenterNet (msra_resnet): the size and offset heads' last layer starts from
    N(0, 0.001^2) with bias 0; the heatmap head's last layer keeps a standard fan-in init
    (U(+-1/sqrt(fan_in)), PyTorch's default) with bias -2.19, so every class starts at sigmoid 0.1.
    A 0.001-scale heatmap layer would pass almost no gradient to the head's hidden layer, and the
    heatmap then takes far longer to start learning.
    """

    def __init__(self, in_channels, mid_channels, out_channels, bias_init=0.0, small_init=True):
        Mo.Module.__init__(self)
        self.conv = ElasticConv(in_channels, mid_channels, 3, with_bias=True)
        bound = 1.0 / math.sqrt(mid_channels)
        w_init = NormalInitializer(1e-3) if small_init else UniformInitializer((-bound, bound))
        self.out = ElasticConv(mid_channels, out_channels, 1, with_bias=True, w_init=w_init, b_init=bias_init)

    def call(self, x):
        return self.out(F.relu(self.conv(x)))
