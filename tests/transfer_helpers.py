"""Stage outputs of a DetOFA network for a fixture's normalised input, and their errors (test helper)."""
import nnabla as nn
import numpy as np

from nnabla_nas_detofa.nets.detector import IMAGE_MEAN, IMAGE_STD

TOLERANCE = 1e-4   # max |ours - reference| / max |reference|, per stage


def raw_images(x_normalised: np.ndarray) -> np.ndarray:
    """The RGB 0..255 images whose ImageNet normalisation is ``x_normalised`` (our networks normalise
    their input themselves)."""
    std = np.array(IMAGE_STD, np.float32).reshape(1, 3, 1, 1)
    mean = np.array(IMAGE_MEAN, np.float32).reshape(1, 3, 1, 1)
    return (x_normalised * std + mean).astype(np.float32)


def stage_outputs(net, x_raw: np.ndarray):
    """The four stage outputs of ``net``'s current path in evaluation mode."""
    net.apply(training=False)
    x = nn.Variable(x_raw.shape)
    x.d = x_raw
    outs = net.call_backbone(x, return_stages=True)
    nn.forward_all(outs)
    return [o.d.copy() for o in outs]


def stage_errors(outs, ref, case: int):
    """Max relative error of each stage against ``ref['case{case}_stage{k}']`` (shapes must agree)."""
    errs = []
    for k, o in enumerate(outs):
        r = ref[f"case{case}_stage{k + 1}"]
        assert o.shape == r.shape, (case, k, o.shape, r.shape)
        errs.append(float(np.abs(o - r).max() / np.abs(r).max()))
    return errs
