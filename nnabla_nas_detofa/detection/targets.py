"""CenterNet training targets ("Objects as Points"), dense layout at output stride 4.

Per image (``C`` classes, input ``S x S``, output ``h = w = S / stride``):

* ``heatmap (C, h, w) float32``: for each object, a Gaussian with peak 1 at its integer centre
  pixel, ``sigma = (2r + 1) / 6``; overlapping Gaussians of one class combine by maximum.
* ``wh (2, h, w) float32``: box width, height in output-stride units at the integer centre pixel.
* ``reg (2, h, w) float32``: sub-pixel centre offset ``centre - floor(centre)`` (x, y) there.
* ``mask (1, h, w) float32``: 1 at the integer centre pixels of objects, else 0.

Boxes come in input pixels (x1, y1, x2, y2, pixel-edge coordinates); the centre in output units is
``((x1 + x2) / 2, (y1 + y2) / 2) / stride`` and its integer pixel ``floor`` of that (clamped to the
map). Objects flagged ``ignore`` (VOC difficult, COCO crowd) and boxes with no extent are left
out; of the rest the first ``max_objs`` in annotation order are kept (the later ones dropped).
They are drawn largest area first, so where two objects share a centre pixel the smaller object's
``wh``/``reg`` win (ties: later in annotation order wins).

Gaussian radius (``gaussian_radius``). For a box ``h x w`` and minimum IoU ``o`` (0.7), CornerNet
bounds how far the two corners may move while a box of IoU >= o remains, in three cases, each a
quadratic ``a r^2 - b r + c = 0`` (written with ``b`` the coefficient's magnitude):

1. both corners move by ``r`` the same way (box shifted by ``(r, r)``):
   ``(h - r)(w - r) / (2hw - (h - r)(w - r)) = o``  =>  ``r^2 - (h + w) r + hw (1 - o)/(1 + o) = 0``;
2. both corners move inward (box shrinks by ``2r``): ``(h - 2r)(w - 2r) / (hw) = o``
   =>  ``4 r^2 - 2(h + w) r + (1 - o) hw = 0``;
3. both corners move outward (box grows by ``2r``): ``hw / ((h + 2r)(w + 2r)) = o``
   =>  ``4o r^2 + 2o(h + w) r - (1 - o) hw = 0``.

The exact radius (``mode="exact"``) is the smallest positive root over the cases:
``(b - sqrt(b^2 - 4ac)) / (2a)`` for 1 and 2, ``(-b + sqrt(b^2 + 4a|c|)) / (2a)`` for 3. The reference
CenterNet code instead evaluates ``(b + sqrt(disc)) / 2`` for each case (it drops ``2a`` and, in
cases 1-2, takes the other root); the minimum is then always case 3 and equals ``4o`` times the
exact case-3 radius. Those larger radii are what CenterNet's published numbers (and DetOFA's)
were trained with, so ``mode="centernet"`` (the default) reproduces them; ``"exact"`` is offered
for experiments. Either way the drawn radius is ``max(0, int(r))`` with ``h, w`` the box size in
output units rounded up.
"""
import math
from functools import lru_cache
from typing import NamedTuple, Optional, Sequence

import numpy as np

RADIUS_MODES = ("centernet", "exact")


class Targets(NamedTuple):
    heatmap: np.ndarray    # (C, h, w)
    wh: np.ndarray         # (2, h, w)
    reg: np.ndarray        # (2, h, w)
    mask: np.ndarray       # (1, h, w)


def _cases(h: float, w: float, o: float):
    """``(a, b, c)`` of the three quadratics ``a r^2 - b r + c`` (see module doc)."""
    s, p = h + w, h * w
    return ((1.0, s, p * (1 - o) / (1 + o)),
            (4.0, 2 * s, (1 - o) * p),
            (4 * o, -2 * o * s, -(1 - o) * p))


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7, mode: str = "centernet") -> float:
    """Radius (output pixels) of the centre Gaussian for a ``height x width`` box (see module doc)."""
    if mode not in RADIUS_MODES:
        raise ValueError(f"radius mode {mode!r}: expected one of {RADIUS_MODES}")
    if not 0 < min_overlap < 1:
        raise ValueError(f"min_overlap={min_overlap}: expected a value in (0, 1)")
    h, w = float(height), float(width)
    if h <= 0 or w <= 0:
        return 0.0
    radii = []
    for a, b, c in _cases(h, w, min_overlap):
        sq = math.sqrt(max(b * b - 4 * a * c, 0.0))
        if mode == "centernet":
            radii.append((b + sq) / 2)
        else:
            # smallest positive root of a r^2 - b r + c = 0
            roots = [(b - sq) / (2 * a), (b + sq) / (2 * a)]
            radii.append(min(r for r in roots if r > 0))
    return min(radii)


@lru_cache(maxsize=256)
def gaussian_kernel(radius: int) -> np.ndarray:
    """``(2r + 1)^2`` Gaussian with ``sigma = (2r + 1) / 6``, value 1 at the centre (read-only)."""
    d = 2 * radius + 1
    sigma = d / 6.0
    y = np.arange(-radius, radius + 1, dtype=np.float64)
    g1 = np.exp(-(y * y) / (2 * sigma * sigma))
    g = np.outer(g1, g1)
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    g = g.astype(np.float32)
    g.setflags(write=False)
    return g


def draw_umich_gaussian(heatmap: np.ndarray, center, radius: int) -> np.ndarray:
    """Element-wise max of ``heatmap (h, w)`` and a Gaussian of ``radius`` at integer ``center=(x, y)``,
    clipped at the borders; in place, returns ``heatmap``."""
    radius = int(radius)
    g = gaussian_kernel(radius)
    x, y = int(center[0]), int(center[1])
    hh, ww = heatmap.shape
    left, right = min(x, radius), min(ww - x, radius + 1)
    top, bottom = min(y, radius), min(hh - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return heatmap
    region = heatmap[y - top:y + bottom, x - left:x + right]
    np.maximum(region, g[radius - top:radius + bottom, radius - left:radius + right], out=region)
    return heatmap


def build_targets(boxes: np.ndarray, labels: np.ndarray, num_classes: int, output_size,
                  stride: int = 4, ignore: Optional[np.ndarray] = None, max_objs: int = 128,
                  radius_mode: str = "centernet", min_overlap: float = 0.7) -> Targets:
    """Targets for one image. ``boxes (N, 4)`` in input pixels, ``labels (N,)`` class indices,
    ``output_size`` = ``(h, w)`` of the output map (or an int for a square one)."""
    if isinstance(output_size, (int, np.integer)):
        oh = ow = int(output_size)
    else:
        oh, ow = (int(v) for v in output_size)
    heat = np.zeros((num_classes, oh, ow), np.float32)
    wh = np.zeros((2, oh, ow), np.float32)
    reg = np.zeros((2, oh, ow), np.float32)
    mask = np.zeros((1, oh, ow), np.float32)
    b = np.asarray(boxes, np.float64).reshape(-1, 4) / float(stride)
    lab = np.asarray(labels, np.int64).reshape(-1)
    if len(lab) != len(b):
        raise ValueError(f"{len(b)} boxes but {len(lab)} labels")
    if len(lab) and (lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"label {int(lab.max() if lab.max() >= num_classes else lab.min())} outside "
                         f"0..{num_classes - 1}")
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    use = (bw > 0) & (bh > 0)
    if ignore is not None:
        use &= ~np.asarray(ignore, bool).reshape(-1)
    idx = np.nonzero(use)[0][:max_objs]
    # largest first, so smaller objects win shared centre pixels; stable on annotation order
    idx = idx[np.argsort(-(bw[idx] * bh[idx]), kind="stable")]
    for i in idx:
        cx, cy = (b[i, 0] + b[i, 2]) / 2, (b[i, 1] + b[i, 3]) / 2
        ix = min(max(int(math.floor(cx)), 0), ow - 1)
        iy = min(max(int(math.floor(cy)), 0), oh - 1)
        r = max(0, int(gaussian_radius(math.ceil(bh[i]), math.ceil(bw[i]), min_overlap, radius_mode)))
        draw_umich_gaussian(heat[lab[i]], (ix, iy), r)
        wh[0, iy, ix], wh[1, iy, ix] = bw[i], bh[i]
        reg[0, iy, ix], reg[1, iy, ix] = cx - ix, cy - iy
        mask[0, iy, ix] = 1.0
    return Targets(heat, wh, reg, mask)


class TargetBuilder:
    """Configured ``build_targets``: ``TargetBuilder(num_classes, input_size)(boxes, labels, ignore)``."""

    def __init__(self, num_classes: int, input_size: int, stride: int = 4, max_objs: int = 128,
                 radius_mode: str = "centernet", min_overlap: float = 0.7):
        if input_size % stride:
            raise ValueError(f"input_size={input_size} is not a multiple of the output stride {stride}")
        if radius_mode not in RADIUS_MODES:
            raise ValueError(f"radius_mode={radius_mode!r}: expected one of {RADIUS_MODES}")
        if not (isinstance(max_objs, int) and max_objs >= 1):
            raise ValueError(f"max_objs={max_objs!r}: expected a positive integer")
        self.num_classes = num_classes
        self.input_size = input_size
        self.stride = stride
        self.output_size = input_size // stride
        self.max_objs = max_objs
        self.radius_mode = radius_mode
        self.min_overlap = min_overlap

    def shapes(self, batch_size: Optional[int] = None) -> Sequence[tuple]:
        """Shapes of (heatmap, wh, reg, mask), with a leading batch axis when ``batch_size`` is given."""
        o = self.output_size
        s = [(self.num_classes, o, o), (2, o, o), (2, o, o), (1, o, o)]
        return [((batch_size,) + t) if batch_size is not None else t for t in s]

    def __call__(self, boxes, labels, ignore=None) -> Targets:
        return build_targets(boxes, labels, self.num_classes, self.output_size, self.stride, ignore,
                             self.max_objs, self.radius_mode, self.min_overlap)
