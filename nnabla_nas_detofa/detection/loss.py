"""CenterNet training loss as an NNabla graph (Zhou et al., "Objects as Points").

Targets are dense maps at output stride 4 (built by ``detection.targets``):

* ``heatmap`` (N, C, h, w): Gaussian peaks in [0, 1], exactly 1 at object centres;
* ``wh`` (N, 2, h, w): box width, height in output-stride units, at centre pixels;
* ``reg`` (N, 2, h, w): sub-pixel centre offset (x, y) in [0, 1), at centre pixels;
* ``mask`` (N, 1, h, w): 1 at centre pixels, else 0.

Normalisation, as CenterNet (``FocalLoss``, ``RegL1Loss``) and NNabla's CenterNet example: every
term is a sum over the whole mini-batch divided by a count (at least 1): the focal loss by the
number of positives (``heatmap == 1``), each L1 term by the mask expanded to both channels, i.e.
2 x the number of objects (the mean absolute error per value). The weights (1, 0.1, 1) therefore
mean what they mean there.

Each term is built as ``(sum, count)`` (``centernet_loss_sums``), so a loss over a whole data set
(``dataset_loss``) is the sum of the batches' sums over the sum of their counts: the loss one
batch holding every image would have, whatever the batch size.
"""
import math
from collections import OrderedDict
from typing import Dict, Sequence, Tuple

import nnabla.functions as F

LOSS_WEIGHTS = (1.0, 0.1, 1.0)  # heatmap, size, offset
PROB_CLIP = 1e-4
FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0


TERMS = ("hm_loss", "wh_loss", "off_loss")


def focal_loss_sums(logits, heatmap):
    """(-sum of the focal terms, number of positives) of the penalty-reduced pixel-wise focal loss
    (alpha 2, beta 4) on sigmoid(logits) clipped to [1e-4, 1 - 1e-4]."""
    p = F.clip_by_value(F.sigmoid(logits), PROB_CLIP, 1.0 - PROB_CLIP)
    pos = F.equal_scalar(heatmap, 1.0)
    neg_weight = F.pow_scalar(F.r_sub_scalar(heatmap, 1.0), FOCAL_BETA) * F.r_sub_scalar(pos, 1.0)
    pos_term = F.log(p) * F.pow_scalar(F.r_sub_scalar(p, 1.0), FOCAL_ALPHA) * pos
    neg_term = F.log(F.r_sub_scalar(p, 1.0)) * F.pow_scalar(p, FOCAL_ALPHA) * neg_weight
    return -(F.sum(pos_term) + F.sum(neg_term)), F.sum(pos)


def masked_l1_sums(pred, target, mask):
    """(sum |pred - target| over centre pixels and channels, centre pixels x channels)."""
    return F.sum(F.abs(pred - target) * mask), F.sum(mask) * float(pred.shape[1])


def _ratio(total, count):
    return total / F.maximum_scalar(count, 1.0)


def focal_loss(logits, heatmap):
    """Focal loss divided by the number of positives (at least 1)."""
    return _ratio(*focal_loss_sums(logits, heatmap))


def masked_l1_loss(pred, target, mask):
    """Mean |pred - target| over the values at centre pixels (CenterNet's ``RegL1Loss``)."""
    return _ratio(*masked_l1_sums(pred, target, mask))


def _check(outputs, targets):
    if len(outputs) != 3:
        raise ValueError(f"expected 3 outputs (heatmap logits, wh, reg), got {len(outputs)}")
    if len(targets) != 4:
        raise ValueError(f"expected 4 targets (heatmap, wh, reg, mask), got {len(targets)}")
    hm_logits, wh, reg = outputs
    hm_t, wh_t, reg_t, mask = targets
    for name, out, tgt in (("heatmap", hm_logits, hm_t), ("wh", wh, wh_t), ("reg", reg, reg_t)):
        if tuple(out.shape) != tuple(tgt.shape):
            raise ValueError(f"{name}: output shape {tuple(out.shape)} != target shape {tuple(tgt.shape)}")
    if tuple(mask.shape) != (wh.shape[0], 1) + tuple(wh.shape[2:]):
        raise ValueError(f"mask: expected shape {(wh.shape[0], 1) + tuple(wh.shape[2:])}, got {tuple(mask.shape)}")


def check_loss_weights(loss_weights, where: str = "loss_weights") -> Tuple[float, float, float]:
    """(heatmap, size, offset) weights: 3 finite non-negative numbers, not all zero."""
    if loss_weights is None:
        return LOSS_WEIGHTS
    ok = isinstance(loss_weights, (list, tuple)) and len(loss_weights) == 3 and all(
        not isinstance(w, bool) and isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in loss_weights)
    if not ok:
        raise ValueError(f"{where}={loss_weights!r}: expected 3 non-negative numbers (heatmap, size, offset)")
    if not any(loss_weights):
        raise ValueError(f"{where}={loss_weights!r}: all weights are zero")
    return tuple(float(w) for w in loss_weights)


def centernet_loss_sums(outputs: Sequence, targets: Sequence) -> "OrderedDict":
    """{term: (sum, count)} Variables for ``TERMS``; a term's loss is sum / max(count, 1)."""
    _check(outputs, targets)
    hm_logits, wh, reg = outputs
    hm_t, wh_t, reg_t, mask = targets
    return OrderedDict([("hm_loss", focal_loss_sums(hm_logits, hm_t)),
                        ("wh_loss", masked_l1_sums(wh, wh_t, mask)),
                        ("off_loss", masked_l1_sums(reg, reg_t, mask))])


def combine(term_values: Dict[str, float], loss_weights: Sequence[float] = None) -> float:
    """The weighted loss of per-term values (numbers), as ``centernet_losses`` weighs Variables."""
    weights = check_loss_weights(loss_weights)
    return float(sum(w * term_values[t] for w, t in zip(weights, TERMS)))


def dataset_loss(sums: Dict[str, Tuple[float, float]], loss_weights: Sequence[float] = None) -> Dict[str, float]:
    """{"loss", term: value} from summed ``(sum, count)`` per term (e.g. over every batch of a split)."""
    terms = {t: float(s) / max(float(c), 1.0) for t, (s, c) in sums.items()}
    return {"loss": combine(terms, loss_weights), **terms}


def centernet_losses(outputs: Sequence, targets: Sequence, loss_weights: Sequence[float] = None) -> "OrderedDict":
    """{'loss', 'hm_loss', 'wh_loss', 'off_loss'}: scalar Variables; 'loss' is the weighted sum.

    ``outputs`` = (heatmap logits, wh, reg); ``targets`` = (heatmap, wh, reg, mask);
    ``loss_weights`` = weights of the three outputs' terms (default 1, 0.1, 1).
    """
    weights = check_loss_weights(loss_weights)
    terms = OrderedDict((t, _ratio(*sc)) for t, sc in centernet_loss_sums(outputs, targets).items())
    total = None
    for w, t in zip(weights, terms.values()):
        if w == 0.0:
            continue
        term = t if w == 1.0 else t * w
        total = term if total is None else total + term
    return OrderedDict([("loss", total)] + list(terms.items()))
