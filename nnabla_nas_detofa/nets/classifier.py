"""A classifier on the supernet's backbone: what an ImageNet supernet is, for pre-training on crops.

``ClassifierHead`` global-average-pools the stride-32 features of the current path and applies an
elastic 1x1 convolution with bias (a linear layer reading the path's active channels, as
once-for-all's ``DynamicLinearLayer``), initialised as once-for-all initialises its classifier
(weights ``U(+-1/sqrt(in))``, bias 0). Its parameters belong to the head alone, so the supernet's
weight files never carry them; only the backbone moves on to detection.
"""
import math

import nnabla.functions as F
from nnabla.initializer import UniformInitializer

import nnabla_nas.module as Mo

from .elastic import ElasticConv


class ClassifierHead(Mo.Module):
    def __init__(self, max_in: int, num_classes: int):
        Mo.Module.__init__(self)
        bound = 1.0 / math.sqrt(max_in)
        self.fc = ElasticConv(max_in, num_classes, 1, with_bias=True, w_init=UniformInitializer((-bound, bound)))
        self.num_classes = num_classes

    def call(self, features):
        pooled = F.mean(features, axis=(2, 3), keepdims=True)
        return F.reshape(self.fc(pooled), (features.shape[0], self.num_classes))


def classification_logits(backbone_net, head: ClassifierHead, x):
    """Logits of the backbone's current path for raw images ``x`` (N, 3, H, W)."""
    return head(backbone_net.call_backbone(x))
