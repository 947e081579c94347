"""CenterNet decoding in numpy: heatmap peaks -> boxes in input-pixel coordinates.

sigmoid, keep a position only where it equals the maximum of its 3x3 neighbourhood (CenterNet's
max-pool "NMS"), top-k over all classes and positions, then for a peak at column x, row y:
centre = (x + reg_x, y + reg_y), half size = wh / 2, all times the output stride. This inverts
the targets: a centre c (input pixels, continuous) is stored at pixel floor(c / 4) with offset
c / 4 - floor(c / 4), and size in output-stride units.
"""
from typing import List, Tuple

import numpy as np

OUTPUT_STRIDE = 4


def _sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def peak_mask(heat: np.ndarray) -> np.ndarray:
    """True where a (C, h, w) map equals its 3x3 neighbourhood maximum (borders padded with -inf)."""
    c, h, w = heat.shape
    padded = np.full((c, h + 2, w + 2), -np.inf, dtype=heat.dtype)
    padded[:, 1:-1, 1:-1] = heat
    hmax = heat.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(hmax, padded[:, dy:dy + h, dx:dx + w], out=hmax)
    return heat == hmax


def decode_image(heatmap_logits: np.ndarray, wh: np.ndarray, reg: np.ndarray, k: int = 100,
                 threshold: float = 0.0, stride: int = OUTPUT_STRIDE) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: logits (C, h, w), wh (2, h, w), reg (2, h, w) ->
    boxes (K, 4) float32 x1 y1 x2 y2, scores (K,) float32 descending, classes (K,) int64.

    K <= k: only peaks whose score is > ``threshold`` (non-peaks score 0, so the default 0 keeps
    every peak). Equal scores keep the order class, row, column.
    """
    heatmap_logits, wh, reg = np.asarray(heatmap_logits), np.asarray(wh), np.asarray(reg)
    if heatmap_logits.ndim != 3 or wh.shape != (2,) + heatmap_logits.shape[1:] or reg.shape != wh.shape:
        raise ValueError(f"expected heatmap (C, h, w), wh and reg (2, h, w); got {heatmap_logits.shape}, "
                         f"{wh.shape}, {reg.shape}")
    c, h, w = heatmap_logits.shape
    # Peaks on the logits: sigmoid is monotone, and unlike the saturated sigmoid it keeps ties rare.
    heat = np.where(peak_mask(heatmap_logits), _sigmoid(heatmap_logits), 0.0).reshape(-1)
    n = min(int(k), heat.size)
    top = np.argsort(-heat, kind="stable")[:n]
    top = top[heat[top] > threshold]
    scores = heat[top]
    cls, pix = np.divmod(top, h * w)
    ys, xs = np.divmod(pix, w)
    cx = xs + reg[0, ys, xs].astype(np.float64)
    cy = ys + reg[1, ys, xs].astype(np.float64)
    half_w = wh[0, ys, xs].astype(np.float64) / 2
    half_h = wh[1, ys, xs].astype(np.float64) / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1) * stride
    return boxes.astype(np.float32).reshape(-1, 4), scores.astype(np.float32), cls.astype(np.int64)


def decode(heatmap_logits: np.ndarray, wh: np.ndarray, reg: np.ndarray, k: int = 100, threshold: float = 0.0,
           stride: int = OUTPUT_STRIDE) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A batch: logits (N, C, h, w), wh and reg (N, 2, h, w) -> per image (boxes, scores, classes),
    see :func:`decode_image`."""
    heatmap_logits, wh, reg = np.asarray(heatmap_logits), np.asarray(wh), np.asarray(reg)
    if heatmap_logits.ndim != 4 or len(wh) != len(heatmap_logits) or len(reg) != len(heatmap_logits):
        raise ValueError(f"expected batched maps (N, C, h, w), (N, 2, h, w), (N, 2, h, w); got "
                         f"{heatmap_logits.shape}, {wh.shape}, {reg.shape}")
    return [decode_image(heatmap_logits[i], wh[i], reg[i], k, threshold, stride) for i in range(len(heatmap_logits))]
