"""BatchNorm re-calibration of one path (once-for-all's ``set_running_statistics``).

Running statistics accumulated while training random paths do not fit any single path; before
evaluating a path its BatchNorms are re-estimated on a few training batches. Every BatchNorm of
the path normalises with its batch statistics while the exact mean and variance of its input
over all the batches are accumulated; they then replace the running statistics of the slice the
path uses (the rest of the supernet's statistics is left as it was).
"""
import nnabla as nn
import nnabla.functions as F
import numpy as np

from .elastic import BNStatistics, ElasticBN


def _as_array(batch) -> np.ndarray:
    if isinstance(batch, nn.NdArray):
        batch = batch.data
    arr = np.asarray(batch, dtype=np.float32)
    if arr.ndim != 4:
        raise ValueError(f"recalibrate_bn: expected batches of images (N, 3, H, W), got shape {arr.shape}")
    return arr


def recalibrate_bn(net, batches) -> int:
    """Re-estimate the running statistics of the BatchNorms ``net(x)`` uses; returns the image count.

    ``net`` is any module whose call builds its graph from ``ElasticBN`` layers (its current arch
    is the path). Batches of one shape share one graph.
    """
    bns = [m for _, m in net.get_modules() if isinstance(m, ElasticBN)]
    for bn in bns:
        bn.calibration = BNStatistics()
    images = 0
    try:
        x = sink = None
        used = []
        for batch in batches:
            arr = _as_array(batch)
            if x is None or tuple(x.shape) != arr.shape:
                for bn in bns:
                    bn.calibration.unbind()
                x = nn.Variable(arr.shape)
                with nn.no_grad():
                    outputs = net(x)
                outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
                used = [bn.calibration for bn in bns if bn.calibration.bound]
                sink = F.sink(*outputs, *[v for s in used for v in s.variables()])
            x.d = arr
            sink.forward(clear_buffer=True)
            for s in used:
                s.accumulate()
            images += arr.shape[0]
        if images == 0:
            raise ValueError("recalibrate_bn: no batches given")
        for bn in bns:
            stats = bn.calibration.result()
            if stats is None:
                continue  # not on this path
            for p, value in zip((bn.mean, bn.var), stats):
                d = p.d.copy()
                d[0, :value.size, 0, 0] = value
                p.d = d
    finally:
        for bn in bns:
            bn.calibration = None
    return images
