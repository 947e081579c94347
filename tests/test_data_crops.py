"""Object crops (``data.crops``): every training crop, jittered and mirrored or not, shows its own
object where the crop was taken (a hand-made image with objects far from its centre)."""
import cv2
import numpy as np

from nnabla_nas_detofa.data.crops import CropSet
from nnabla_nas_detofa.data.records import ImageRecord


def _record(tmp_path):
    """A 160 x 100 black image: a white square with a notch (top left) at the left (x 10-40) and a
    blue bar at the right."""
    img = np.zeros((100, 160, 3), np.uint8)
    img[30:60, 10:40] = 255
    img[30:38, 10:18] = 0
    img[20:80, 140:150] = (255, 0, 0)   # BGR
    path = str(tmp_path / "img.png")
    cv2.imwrite(path, img)
    return ImageRecord(image_id="img", image_path=path, width=160, height=100,
                       boxes=np.array([[10, 30, 40, 60], [140, 20, 150, 80]], np.float32),
                       labels=np.array([0, 1]), difficult=np.zeros(2, bool), crowd=np.zeros(2, bool))


def _mirrored(rng) -> bool:
    """Whether a crop drawn with ``rng`` is mirrored: the crop's own draws replayed (side jitter,
    centre jitter, then the mirror coin)."""
    rng.uniform(size=1)
    rng.uniform(size=2)
    return bool(rng.random() < 0.5)


def test_training_crops_show_their_object_mirrored_or_not(tmp_path):
    crops = CropSet([_record(tmp_path)], 32, 4, True, seed=0, context=0.25)
    mirrored = 0
    for draw in range(40):
        mirrored += _mirrored(np.random.default_rng([0, draw]))
        img, label = crops.crop(0, np.random.default_rng([0, draw]))
        assert label == 0
        white = img.min(0) > 200                  # the square (the bar is blue)
        assert white.mean() > 0.3, draw           # the crop is mostly the object (side 1.25 x 0.85-1.25)
        ys, xs = np.nonzero(white)
        # the object's centre lies within the centre jitter (+-10 % of the side) of the crop centre
        assert abs(xs.mean() - 15.5) < 6 and abs(ys.mean() - 15.5) < 6, draw
        assert not (img[2] - img[0] > 40).any(), draw   # never the other object (RGB: blue >> red)
    assert 5 < mirrored < 35


def test_mirroring_is_the_mirror_of_the_same_crop(tmp_path):
    """A mirrored crop is the unmirrored crop of the same jitter, left-right reversed."""
    crops = CropSet([_record(tmp_path)], 32, 4, True, seed=0, context=0.25, scale_range=(1.0, 1.0), shift=0.0)
    plain = crops.crop(0, None)[0]
    found = False
    for draw in range(10):
        img, _ = crops.crop(0, np.random.default_rng([1, draw]))
        if not np.array_equal(img, plain):
            found = True
            assert np.array_equal(img, plain[:, :, ::-1])
        else:
            assert np.array_equal(img, plain)
    assert found
