import numpy as np
import pytest

from nnabla_nas_detofa.data import DataError
from nnabla_nas_detofa.data.transforms import (EIG_VAL, EIG_VEC, AugmentConfig, Transform, affine_transform,
                                               color_jitter, compose, flip_matrix, invert_affine, invert_boxes,
                                               transform_boxes)


def test_letterbox_keeps_aspect_and_centres():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:] = (255, 0, 0)                                     # pure blue in BGR
    t = Transform(100)(img, np.array([[0, 0, 200, 100], [50, 20, 70, 40]], np.float32))
    assert t.image.shape == (3, 100, 100) and t.image.dtype == np.float32
    np.testing.assert_allclose(t.boxes, [[0, 25, 100, 75], [25, 35, 35, 45]])
    # RGB output: blue is channel 2; padding rows are 0
    assert t.image[2, 50, 50] == 255 and t.image[0, 50, 50] == 0
    assert t.image[:, 10, 50].max() == 0 and t.image[:, 90, 50].max() == 0
    np.testing.assert_allclose(t.affine, [[0.5, 0, 0], [0, 0.5, 25]])
    np.testing.assert_allclose(invert_boxes(t.boxes, t.inverse), [[0, 0, 200, 100], [50, 20, 70, 40]], atol=1e-4)


def test_pixels_and_boxes_move_together_half_pixel_exact():
    img = np.zeros((20, 30, 3), np.uint8)
    img[5:15, 10:20] = 200                                   # pixels 10..19 -> box x1=10, x2=20
    m = affine_transform((15, 10), 15, 30)                   # scale 2, source (7.5..22.5) -> 0..30
    tf = Transform(30)
    tf.sample_affine = lambda w, h, rng: m
    t = tf(img, np.array([[10, 5, 20, 15]], np.float32))
    np.testing.assert_allclose(t.boxes, [[5, 5, 25, 25]])
    row = t.image[0, 10]
    # block maps to [5, 25): pixels 6..23 full; the two edge pairs blend symmetrically (0.25, 0.75)
    assert (row[6:24] == 200).all()
    assert row[4] == pytest.approx(50, abs=1) and row[5] == pytest.approx(150, abs=1)
    assert row[25] == pytest.approx(50, abs=1) and row[24] == pytest.approx(150, abs=1)


def test_flip_and_affine_algebra():
    m = compose(affine_transform((50, 25), 100, 100), flip_matrix(100))
    b = np.array([[10, 5, 30, 25]], np.float32)
    np.testing.assert_allclose(transform_boxes(b, m), [[70, 30, 90, 50]])
    np.testing.assert_allclose(transform_boxes(transform_boxes(b, m), invert_affine(m)), b, atol=1e-5)
    np.testing.assert_allclose(invert_affine(invert_affine(m)), m)
    np.testing.assert_allclose(invert_boxes(np.array([[-10, 20, 200, 60]]), invert_affine(m), (100, 50)),
                               [[0, 0, 100, 35]])


def test_training_augmentation_is_deterministic_and_varied():
    rng0 = np.random.default_rng(0)
    img = rng0.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 30, 40], [50, 5, 78, 55]], np.float32)
    tf = Transform(64, AugmentConfig())
    a = tf(img, boxes, np.random.default_rng(5))
    b = tf(img, boxes, np.random.default_rng(5))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.affine, b.affine)
    assert a.image.min() >= 0 and a.image.max() <= 255 and a.image.shape == (3, 64, 64)
    flips, scales = set(), []
    for s in range(40):
        t = tf(img, boxes, np.random.default_rng(s))
        flips.add(bool(t.affine[0, 0] < 0))
        scales.append(abs(t.affine[0, 0]) * 80)              # input size / source square side
        # kept boxes are inside the input and map back inside the source image
        assert (t.boxes >= 0).all() and (t.boxes <= 64).all()
        back = invert_boxes(t.boxes, t.inverse)
        assert (back >= -1e-3).all() and (back[:, 2] <= 80 + 1e-3).all()
        assert set(t.keep.tolist()) <= {0, 1}
    assert flips == {True, False}
    # scale factor 1 / U(0.6, 1.4) of the letterbox scale 64/80
    assert 64 / 1.4 - 1e-6 <= min(scales) and max(scales) <= 64 / 0.6 + 1e-6


def test_vanishing_boxes_are_dropped_with_keep_indices():
    img = np.zeros((100, 100, 3), np.uint8)
    tf = Transform(50)
    tf.sample_affine = lambda w, h, rng: affine_transform((25, 25), 50, 50)   # crop the top-left quarter
    t = tf(img, np.array([[60, 60, 90, 90], [10, 10, 20, 20], [45, 0, 80, 10]], np.float32))
    assert t.keep.tolist() == [1, 2]
    np.testing.assert_allclose(t.boxes, [[10, 10, 20, 20], [45, 0, 50, 10]])
    tf.min_box_size = 6.0                                    # 5 px wide after clipping: too thin
    assert tf(img, np.array([[45, 0, 80, 10]], np.float32)).keep.tolist() == []


def test_color_jitter_components():
    cfg0 = AugmentConfig(brightness=0, contrast=0, saturation=0, lighting=0.1)
    img = np.full((4, 4, 3), 0.5, np.float32)
    out = color_jitter(img.copy(), np.random.default_rng(3), cfg0)
    r = np.random.default_rng(3)
    r.permutation(3)
    alpha = r.normal(0, 0.1, 3).astype(np.float32)
    np.testing.assert_allclose(out[0, 0], 0.5 + EIG_VEC @ (alpha * EIG_VAL), rtol=1e-6)
    # brightness only: a factor in [0.6, 1.4]
    out = color_jitter(img.copy(), np.random.default_rng(1), AugmentConfig(contrast=0, saturation=0, lighting=0))
    assert np.allclose(out, out[0, 0, 0]) and 0.3 <= out[0, 0, 0] <= 0.7
    # saturation and contrast leave a uniform grey image grey
    out = color_jitter(img.copy(), np.random.default_rng(2), AugmentConfig(brightness=0, lighting=0))
    np.testing.assert_allclose(out, 0.5, atol=1e-6)
    # saturation of a coloured pixel moves it towards / away from its grey value, clipped to 0..1
    col = np.zeros((1, 1, 3), np.float32)
    col[..., 0] = 1.0
    outs = {float(color_jitter(col.copy(), np.random.default_rng(s), AugmentConfig(
        brightness=0, contrast=0, lighting=0))[0, 0, 1]) for s in range(10)}
    assert len(outs) > 1 and min(outs) >= 0


def test_transform_colour_path_equals_the_reference_jitter():
    rng0 = np.random.default_rng(1)
    img = rng0.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    cfg = AugmentConfig(scale_range=(1.0, 1.0), shift=0.0, flip=0.0)
    for seed in range(5):
        out = Transform(32, cfg)(img, np.zeros((0, 4)), np.random.default_rng(seed)).image
        r = np.random.default_rng(seed)
        r.uniform(1.0, 1.0)                                   # the affine's draws (identity here)
        r.uniform(0, 0, size=2)
        ref = color_jitter(img[:, :, ::-1].astype(np.float32) / 255, r, cfg) * 255
        np.testing.assert_allclose(out, ref.transpose(2, 0, 1), atol=1.0)      # cv2 rounds (fixed point)
        assert not np.allclose(out, img[:, :, ::-1].transpose(2, 0, 1))


def test_augment_config_parsing():
    assert AugmentConfig.from_value(True) == AugmentConfig()
    assert AugmentConfig.from_value(False) is None
    c = AugmentConfig.from_value({"scale_range": [0.8, 1.2], "flip": 0})
    assert c.scale_range == (0.8, 1.2) and c.flip == 0
    with pytest.raises(DataError, match=r"augment: unknown key\(s\) \['rotate'\]"):
        AugmentConfig.from_value({"rotate": 10})
    with pytest.raises(DataError, match="scale_range"):
        AugmentConfig.from_value({"scale_range": [1.2]})
    with pytest.raises(DataError, match="flip"):
        AugmentConfig.from_value({"flip": 2})
    with pytest.raises(DataError, match="input_size"):
        Transform(4)
