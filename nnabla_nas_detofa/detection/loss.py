"""CenterNet training loss as an NNabla graph (Zhou et al., "Objects as Points").

Targets are dense maps at output stride 4 (built by ``detection.targets``):

* ``heatmap`` (N, C, h, w): Gaussian peaks in [0, 1], exactly 1 at object centres;
* ``wh`` (N, 2, h, w): box width, height in output-stride units, at centre pixels;
* ``reg`` (N, 2, h, w): sub-pixel centre offset (x, y) in [0, 1), at centre pixels;
* ``mask`` (N, 1, h, w): 1 at centre pixels, else 0.

Normalisation: every term is a sum over the whole mini-batch divided by the number of objects
in it (at least 1): positives ``heatmap == 1`` for the focal loss, ``sum(mask)`` for the L1 terms.
For the L1 terms the two values of an object (w and h, or x and y) are *summed*, then divided
by the number of objects. CenterNet's ``RegL1Loss`` divides by the mask expanded to both channels
(twice the number of objects), so our size and offset terms are twice CenterNet's for the same
prediction; with the paper's weights (1, 0.1, 1) the L1 terms weigh twice as much relative to the
heatmap term as in CenterNet.
"""
from collections import OrderedDict
from typing import Sequence

import nnabla.functions as F

LOSS_WEIGHTS = (1.0, 0.1, 1.0)  # heatmap, size, offset
PROB_CLIP = 1e-4
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0


def focal_loss(logits, heatmap):
    """Penalty-reduced pixel-wise focal loss (alpha 2, beta 4) on sigmoid(logits) clipped to [1e-4, 1-1e-4]."""
    p = F.clip_by_value(F.sigmoid(logits), PROB_CLIP, 1.0 - PROB_CLIP)
    pos = F.equal_scalar(heatmap, 1.0)
    neg_weight = F.pow_scalar(F.r_sub_scalar(heatmap, 1.0), FOCAL_BETA) * F.r_sub_scalar(pos, 1.0)
    pos_term = F.log(p) * F.pow_scalar(F.r_sub_scalar(p, 1.0), FOCAL_ALPHA) * pos
    neg_term = F.log(F.r_sub_scalar(p, 1.0)) * F.pow_scalar(p, FOCAL_ALPHA) * neg_weight
    num_pos = F.maximum_scalar(F.sum(pos), 1.0)
    return -(F.sum(pos_term) + F.sum(neg_term)) / num_pos


def masked_l1_loss(pred, target, mask):
    """sum |pred - target| over centre pixels and both channels, divided by the number of objects."""
    return F.sum(F.abs(pred - target) * mask) / F.maximum_scalar(F.sum(mask), 1.0)


def centernet_losses(outputs: Sequence, targets: Sequence, loss_weights: Sequence[float] = None) -> "OrderedDict":
    """{'loss', 'hm_loss', 'wh_loss', 'off_loss'}: scalar Variables; 'loss' is the weighted sum.

    ``outputs`` = (heatmap logits, wh, reg); ``targets`` = (heatmap, wh, reg, mask);
    ``loss_weights`` = weights of the three outputs' terms (default 1, 0.1, 1).
    """
    if len(outputs) != 3:
        raise ValueError(f"expected 3 outputs (heatmap logits, wh, reg), got {len(outputs)}")
    if len(targets) != 4:
        raise ValueError(f"expected 4 targets (heatmap, wh, reg, mask), got {len(targets)}")
    weights = LOSS_WEIGHTS if loss_weights is None else tuple(float(w) for w in loss_weights)
    if len(weights) != 3:
        raise ValueError(f"loss_weights: expected 3 values (heatmap, size, offset), got {len(weights)}")
    hm_logits, wh, reg = outputs
    hm_t, wh_t, reg_t, mask = targets
    for name, out, tgt in (("heatmap", hm_logits, hm_t), ("wh", wh, wh_t), ("reg", reg, reg_t)):
        if tuple(out.shape) != tuple(tgt.shape):
            raise ValueError(f"{name}: output shape {tuple(out.shape)} != target shape {tuple(tgt.shape)}")
    if tuple(mask.shape) != (wh.shape[0], 1) + tuple(wh.shape[2:]):
        raise ValueError(f"mask: expected shape {(wh.shape[0], 1) + tuple(wh.shape[2:])}, got {tuple(mask.shape)}")
    terms = OrderedDict()
    terms["hm_loss"] = focal_loss(hm_logits, hm_t)
    terms["wh_loss"] = masked_l1_loss(wh, wh_t, mask)
    terms["off_loss"] = masked_l1_loss(reg, reg_t, mask)
    total = None
    for w, t in zip(weights, terms.values()):
        if w == 0.0:
            continue
        term = t if w == 1.0 else t * w
        total = term if total is None else total + term
    if total is None:
        raise ValueError("loss_weights: all weights are zero")
    return OrderedDict([("loss", total)] + list(terms.items()))
