"""CenterNet-style augmentation with OpenCV: one affine warp to a square input, colour jitter, PCA lighting.

Affine convention: a 2x3 matrix ``M`` maps 0-based pixel-edge coordinates of the source image
(see ``records``) to those of the network input, ``[u, v] = M @ [x, y, 1]``. ``cv2.warpAffine``
places pixel centres at integer coordinates, so ``cv2_matrix(M)`` shifts by half a pixel on both
sides before warping; boxes and pixels therefore move together exactly.

* ``affine_transform(center, scale, size)``: CenterNet's ``get_affine_transform`` without rotation:
  the square of side ``scale`` (source pixels) centred at ``center`` fills the ``size x size``
  input, scale factor ``size / scale`` on both axes.
* Training (``augment`` on): ``scale = max(w, h) * U(scale_range)`` (0.6-1.4), centre = image centre
  + ``U(-shift, shift) * (w, h)`` (0.25), horizontal flip with probability 0.5 (folded into the
  affine), then in random order brightness / contrast / saturation jitter (factors
  ``1 + U(-0.4, 0.4)``), then AlexNet-style PCA lighting with CenterNet's ImageNet eigen values and
  vectors (``alpha ~ N(0, 0.1)``, RGB order), all composed into one affine colour map applied
  with ``cv2.transform`` (rounded and clipped to 0..255; see ``color_matrix``).
* Evaluation (or ``augment`` off): letterbox: ``center = (w/2, h/2)``, ``scale = max(w, h)``, aspect
  kept, padding 0.
* Boxes are mapped through ``M``, clipped to the input, and dropped when narrower or lower than
  ``min_box_size`` input pixels; ``keep`` tells which objects survive.
* ``invert_boxes(boxes, inverse)`` maps input-space boxes (e.g. detections) back to the source
  image, clipped to it.
Output images are float32, CHW, RGB, 0..255 (the network normalises).
"""
from dataclasses import dataclass, fields
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from ..schema import finite_number, show_value
from .records import DataError

# CenterNet's PCA lighting constants (ImageNet RGB eigen decomposition, as in fb.resnet.torch).
EIG_VAL = np.array([0.2141788, 0.01817699, 0.00482558], dtype=np.float32)
EIG_VEC = np.array([[-0.58752847, -0.69563484, 0.41340352],
                    [-0.5832747, 0.00994535, -0.81221408],
                    [-0.56089297, 0.71832671, 0.41158938]], dtype=np.float32)
GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)    # RGB luma weights


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation. ``AugmentConfig.from_value(True | False | {...})`` reads the JSON option."""

    scale_range: Tuple[float, float] = (0.6, 1.4)
    shift: float = 0.25
    flip: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    lighting: float = 0.1
    min_box_size: float = 1.0

    @classmethod
    def from_value(cls, value, where: str = "augment") -> Optional["AugmentConfig"]:
        if value is None or value is True:
            return cls()
        if value is False:
            return None
        if not isinstance(value, dict):
            raise DataError(f"{where}: expected true, false or an object, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
        kw = dict(value)
        if "scale_range" in kw:
            sr = kw["scale_range"]
            if not (isinstance(sr, (list, tuple)) and len(sr) == 2 and all(finite_number(s) for s in sr)
                    and 0 < sr[0] <= sr[1]):
                raise DataError(f"{where}.scale_range: expected [low, high] with 0 < low <= high, got "
                                f"{show_value(sr)}")
            kw["scale_range"] = (float(sr[0]), float(sr[1]))
        for k in sorted(known - {"scale_range"}):
            if k in kw:
                v = kw[k]
                if not finite_number(v) or v < 0:
                    raise DataError(f"{where}.{k}: expected a finite number >= 0, got {show_value(v)}")
                kw[k] = float(v)
        if kw.get("flip", 0) > 1:
            raise DataError(f"{where}.flip: a probability in [0, 1], got {kw['flip']!r}")
        return cls(**kw)


# --- affine helpers ------------------------------------------------------------------------------
def affine_transform(center, scale: float, size: int) -> np.ndarray:
    """2x3 matrix mapping the square of side ``scale`` around ``center`` onto ``[0, size]^2``."""
    k = float(size) / float(scale)
    cx, cy = float(center[0]), float(center[1])
    return np.array([[k, 0.0, size / 2.0 - k * cx], [0.0, k, size / 2.0 - k * cy]], dtype=np.float64)


def flip_matrix(width: float) -> np.ndarray:
    return np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine ``a o b`` (``b`` first)."""
    return a[:, :2] @ b + np.concatenate([np.zeros((2, 2)), a[:, 2:]], 1)


def invert_affine(m: np.ndarray) -> np.ndarray:
    a = np.asarray(m, np.float64)[:, :2]
    t = np.asarray(m, np.float64)[:, 2]
    ai = np.linalg.inv(a)
    return np.concatenate([ai, (-ai @ t)[:, None]], 1)


def cv2_matrix(m: np.ndarray) -> np.ndarray:
    """``m`` for pixel-edge coordinates -> the matrix cv2 expects (pixel centres at integers)."""
    a = m[:, :2]
    t = m[:, 2] + a @ np.array([0.5, 0.5]) - 0.5
    return np.concatenate([a, t[:, None]], 1)


def transform_boxes(boxes: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Axis-aligned bounding boxes of the mapped corners, (N, 4) float32."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0:
        return np.zeros((0, 4), np.float32)
    xs = b[:, [0, 2, 0, 2]]
    ys = b[:, [1, 1, 3, 3]]
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    return np.stack([u.min(1), v.min(1), u.max(1), v.max(1)], 1).astype(np.float32)


def invert_boxes(boxes: np.ndarray, inverse: np.ndarray, image_size: Optional[Tuple[int, int]] = None
                 ) -> np.ndarray:
    """Map input-space boxes back to the source image with the inverse affine (``meta.inverse``);
    clip to ``image_size = (width, height)`` when given."""
    out = transform_boxes(boxes, np.asarray(inverse, np.float64))
    if image_size is not None:
        np.clip(out[:, 0::2], 0, image_size[0], out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, image_size[1], out=out[:, 1::2])
    return out


# --- colour --------------------------------------------------------------------------------------
def color_matrix(mean_rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> Tuple[np.ndarray, np.ndarray]:
    """The random colour jitter as one per-pixel affine map ``rgb -> A @ rgb + b`` (values in 0..1).

    Brightness (``x * f``), contrast (``x * a + (1 - a) * mean grey of the image``) and saturation
    (``x * a + (1 - a) * grey(x)``), in random order, then PCA lighting (``+ EIG_VEC @ (alpha *
    EIG_VAL)``) are all affine in the pixel value; the contrast mean is that of the image as
    transformed so far, an affine function of ``mean_rgb`` (the mean RGB of the image, 0..1).
    Composing them gives exactly the sequential result, before the final clipping.
    """
    a = np.eye(3)
    b = np.zeros(3)
    mean_rgb = np.asarray(mean_rgb, np.float64)
    gray = GRAY.astype(np.float64)
    for op in rng.permutation(3):
        if op == 0 and cfg.brightness > 0:
            f = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
            a, b = a * f, b * f
        elif op == 1 and cfg.contrast > 0:
            alpha = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
            m = gray @ (a @ mean_rgb + b)
            a, b = a * alpha, b * alpha + (1 - alpha) * m
        elif op == 2 and cfg.saturation > 0:
            alpha = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
            s = alpha * np.eye(3) + (1 - alpha) * np.outer(np.ones(3), gray)
            a, b = s @ a, s @ b
    if cfg.lighting > 0:
        alpha = rng.normal(0, cfg.lighting, size=3)
        b = b + EIG_VEC.astype(np.float64) @ (alpha * EIG_VAL.astype(np.float64))
    return a, b


def color_jitter(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Colour jitter of an HWC RGB float image in 0..1 (reference form of what ``Transform`` does
    with one ``cv2.transform`` on uint8); returns a new array clipped to 0..1."""
    a, b = color_matrix(img.reshape(-1, 3).mean(0), rng, cfg)
    out = img.astype(np.float64) @ a.T + b
    return np.clip(out, 0, 1).astype(np.float32)


class Transformed(NamedTuple):
    image: np.ndarray        # (3, S, S) float32 RGB 0..255
    boxes: np.ndarray        # (M, 4) float32, input pixels
    keep: np.ndarray         # (M,) int64: index of each kept box in the source
    affine: np.ndarray       # (2, 3) source -> input
    inverse: np.ndarray      # (2, 3) input -> source


class Transform:
    """``Transform(size, augment)(image_bgr_uint8, boxes, rng)`` -> ``Transformed``.

    ``augment=None`` is the evaluation letterbox; an ``AugmentConfig`` the training augmentation.
    """

    def __init__(self, size: int, augment: Optional[AugmentConfig] = None, min_box_size: Optional[float] = None):
        if not isinstance(size, int) or size < 8:
            raise DataError(f"input_size={size!r}: expected an integer >= 8")
        self.size = size
        self.augment = augment
        self.min_box_size = (augment.min_box_size if augment is not None else 0.0) if min_box_size is None \
            else float(min_box_size)

    def sample_affine(self, width: int, height: int, rng: Optional[np.random.Generator]) -> np.ndarray:
        center = np.array([width / 2.0, height / 2.0])
        scale = float(max(width, height))
        if self.augment is None or rng is None:
            return affine_transform(center, scale, self.size)
        a = self.augment
        scale *= rng.uniform(*a.scale_range)
        center += rng.uniform(-a.shift, a.shift, size=2) * np.array([width, height])
        m = affine_transform(center, scale, self.size)
        if a.flip > 0 and rng.random() < a.flip:
            m = compose(m, flip_matrix(width))
        return m

    def __call__(self, image: np.ndarray, boxes: np.ndarray, rng: Optional[np.random.Generator] = None
                 ) -> Transformed:
        h, w = image.shape[:2]
        m = self.sample_affine(w, h, rng)
        s = self.size
        warped = cv2.warpAffine(image, cv2_matrix(m), (s, s), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        if self.augment is not None and rng is not None:
            mean_bgr = np.array(cv2.mean(warped)[:3]) / 255.0
            a, b = color_matrix(mean_bgr[::-1], rng, self.augment)
            # BGR in, RGB out, 0..255; cv2 rounds and saturates to 0..255 (the clipping)
            mat = np.concatenate([a[:, ::-1], 255.0 * b[:, None]], 1)
            rgb = cv2.transform(warped, mat)
        else:
            rgb = warped[:, :, ::-1]
        chw = rgb.transpose(2, 0, 1).astype(np.float32)
        tb = transform_boxes(boxes, m)
        np.clip(tb, 0, s, out=tb)
        ms = max(self.min_box_size, 0.0)
        ok = ((tb[:, 2] - tb[:, 0]) > ms) & ((tb[:, 3] - tb[:, 1]) > ms) if len(tb) else np.zeros(0, bool)
        keep = np.nonzero(ok)[0]
        return Transformed(chw, tb[keep], keep.astype(np.int64), m, invert_affine(m))
