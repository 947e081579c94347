import os
import types

import numpy as np
import pytest

from nnabla_nas_detofa.data import DataError
from nnabla_nas_detofa.data.loader import (NNABLA_NAS_DATASETS, CocoDataLoader, DataLoader, loader_options,
                                           make_loader, register_datasets)
from nnabla_nas_detofa.data.pipeline import DetectionLoader, search_split, shard
from nnabla_nas_detofa.data.synthetic import make_synthetic_voc
from nnabla_nas_detofa.data.transforms import transform_boxes

from test_data_fixtures import write_coco


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth"))
    make_synthetic_voc(root, num_train=30, num_val=10, image_size=64, seed=1)
    return root


def opts(root, **kw):
    o = dict(root=root, train_split="synth_train", test_split="synth_val", input_size=64, num_workers=2)
    o.update(kw)
    return o


def comm(rank=0, n=1):
    return types.SimpleNamespace(rank=rank, n_procs=n)


def test_batch_layout(synth):
    dl = DataLoader(searching=False, training=True, batch_size=4, communicator=comm(), **opts(synth))
    assert dl.transform is None and len(dl) == 30 and dl.class_names[0] == "circle"
    b = dl.next()
    (x,), (heat, wh, reg, mask) = b["inputs"], b["targets"]
    assert x.shape == (4, 3, 64, 64) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert heat.shape == (4, 5, 16, 16) and wh.shape == (4, 2, 16, 16) and reg.shape == (4, 2, 16, 16)
    assert mask.shape == (4, 1, 16, 16) and all(t.dtype == np.float32 for t in (heat, wh, reg, mask))
    assert mask.sum() > 0 and heat.max() == 1.0
    assert ((reg >= 0) & (reg < 1)).all() and (wh[mask.repeat(2, 1) > 0] > 0).all()
    assert dl.shapes() == ((4, 3, 64, 64), [(4, 5, 16, 16), (4, 2, 16, 16), (4, 2, 16, 16), (4, 1, 16, 16)])
    dl.close()


def test_batches_do_not_depend_on_workers_and_follow_the_seed(synth):
    def batches(workers, seed, n=3):
        ld = make_loader(False, True, 4, **opts(synth, num_workers=workers, seed=seed))
        out = [ld.next() for _ in range(n)]
        ld.close()
        return out
    a, b, c = batches(0, 0), batches(3, 0), batches(2, 1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["inputs"][0], y["inputs"][0])
        for tx, ty in zip(x["targets"], y["targets"]):
            np.testing.assert_array_equal(tx, ty)
    assert not np.array_equal(a[0]["inputs"][0], c[0]["inputs"][0])


def test_epochs_visit_every_image_once(synth):
    ld = make_loader(False, True, 4, **opts(synth, num_workers=0))
    pos = [p for k in range(15) for p in ld._positions(k)]           # 60 positions = 2 epochs of 30
    for e in (0, 1):
        assert sorted(p[2] for p in pos if p[0] == e) == list(range(30))
    assert [p[2] for p in pos if p[0] == 0] != [p[2] for p in pos if p[0] == 1]   # reshuffled
    assert pos[28][0] == 0 and pos[30][0] == 1                       # batch 7 spans the two epochs
    val = make_loader(False, False, 4, **opts(synth, num_workers=0))
    assert [p[2] for k in range(3) for p in val._positions(k)] == list(range(10)) + [0, 1]   # no shuffle, wraps
    assert val.augment_config is None


def test_search_split_and_shards(synth):
    tr = make_loader(True, True, 2, **opts(synth))
    va = make_loader(True, False, 2, **opts(synth))
    ids_tr = {r.image_id for r in tr.records}
    ids_va = {r.image_id for r in va.records}
    assert len(ids_tr) == 24 and len(ids_va) == 6 and not ids_tr & ids_va
    assert ids_tr | ids_va == {r.image_id for r in make_loader(False, True, 2, **opts(synth)).records}
    assert "search-valid" in va.dataset.split
    # ranks: disjoint, equal sizes, same split on every rank
    r0 = make_loader(True, True, 2, rank=0, n_procs=2, **opts(synth))
    r1 = make_loader(True, True, 2, rank=1, n_procs=2, **opts(synth))
    s0, s1 = {r.image_id for r in r0.records}, {r.image_id for r in r1.records}
    assert len(s0) == len(s1) == 12 and not s0 & s1 and s0 | s1 == ids_tr
    # helpers
    a, b = search_split(10, 0.2, 0)
    assert len(a) == 8 and len(b) == 2 and sorted(np.concatenate([a, b]).tolist()) == list(range(10))
    assert search_split(2, 0.2, 0)[1].size == 1
    assert shard(7, 1, 3).tolist() == [1, 4] and shard(7, 0, 3, equal=False).tolist() == [0, 3, 6]
    with pytest.raises(DataError, match="search_valid_fraction"):
        search_split(10, 1.0, 0)


def test_non_search_valid_and_test_read_valid_split(synth):
    v = DataLoader(searching=False, training=False, batch_size=5, **opts(synth))
    assert len(v) == 10 and v.dataset.split == "synth_val"
    v2 = DataLoader(searching=False, training=False, batch_size=5,
                    **opts(synth, valid_split="synth_train", test_split="synth_val"))
    assert len(v2) == 30 and v2.eval_dataset("test").split == "synth_val"


def test_iterate_eval_maps_back_to_original_images(synth):
    dl = DataLoader(searching=False, training=True, batch_size=4, communicator=comm(), **opts(synth))
    seen = []
    for images, metas in dl.iterate_eval("test", pad=True):
        assert images.shape == (4, 3, 64, 64)
        for m in metas:
            seen.append(m.image_id)
            rec = m.record
            assert (m.width, m.height) == (rec.width, rec.height)
            inp = transform_boxes(rec.boxes, m.affine)          # GT in input pixels
            np.testing.assert_allclose(m.to_original(inp), rec.boxes, atol=1e-3)
            np.testing.assert_allclose(m.to_original(inp / 4, stride=4), rec.boxes, atol=1e-3)
            assert abs(m.affine[0, 0]) == pytest.approx(64 / max(rec.width, rec.height))
    assert len(seen) == 10 and len(metas) == 2                        # last batch: 2 real + 2 padding
    assert seen == [f"{i:06d}" for i in range(30, 40)]
    # ranks split evaluation images without dropping any
    parts = [sum(len(m) for _, m in DataLoader(False, False, 3, comm(r, 3), **opts(synth)).iterate_eval())
             for r in range(3)]
    assert parts == [4, 3, 3]


def test_options_are_validated(synth):
    with pytest.raises(DataError, match=r"unknown option\(s\) \['imgsize'\]"):
        DataLoader(False, True, 2, **opts(synth, imgsize=3))
    with pytest.raises(DataError, match="num_classes=20 but .* has 5 classes"):
        DataLoader(False, True, 2, **opts(synth, num_classes=20))
    with pytest.raises(DataError, match="input_size=66: not a multiple"):
        DataLoader.check_options(opts(synth, input_size=66))
    with pytest.raises(DataError, match="root"):
        loader_options({})
    with pytest.raises(DataError, match="augment"):
        loader_options(opts(synth, augment="yes"))
    o = loader_options({"root": "x"})
    assert o["train_split"] == "2007_trainval+2012_trainval" and o["valid_split"] == "2007_test"
    assert loader_options({"root": "x"}, "coco")["train_split"] == "train2017"
    with pytest.raises(DataError, match="synth_nope"):
        DataLoader(False, True, 2, **opts(synth, train_split="synth_nope"))
    with pytest.raises(DataError, match="cannot feed 50 processes"):
        make_loader(False, False, 1, rank=0, n_procs=50, **opts(synth))


def test_missing_image_is_named(tmp_path):
    root = str(tmp_path)
    make_synthetic_voc(root, num_train=2, num_val=1, image_size=32, seed=0)
    bad = os.path.join(root, "VOCsynth", "JPEGImages", "000001.jpg")
    with open(bad, "wb") as f:
        f.write(b"not a jpeg")
    ld = make_loader(False, True, 2, **opts(root, input_size=32))
    with pytest.raises(DataError, match="000001.jpg: cannot decode image"):
        ld.next()


def test_coco_loader_and_crowd_excluded(tmp_path):
    root = str(tmp_path)
    write_coco(root, "train2017", [(1, "a.jpg", 64, 64), (2, "b.jpg", 64, 48)],
               [(1, 5, [8, 8, 16, 16]), (1, 9, [30, 30, 20, 20], 1), (2, 9, [0, 0, 10, 10])],
               [(5, "a"), (9, "b")])
    dl = CocoDataLoader(False, True, 2, root=root, input_size=64, augment=False, shuffle=False, num_workers=0)
    b = dl.next()
    heat, _, _, mask = b["targets"]
    assert heat.shape == (2, 2, 16, 16)
    assert mask[0].sum() == 1 and heat[0, 1].max() == 0                # the crowd box draws nothing
    assert heat[0, 0, 4, 4] == 1.0                                      # centre (16, 16) px / 4
    assert mask[1].sum() == 1


def test_registration_and_nnabla_nas_configuration(synth):
    assert set(NNABLA_NAS_DATASETS) == {"detofa_voc", "detofa_coco"}
    assert register_datasets() == ["detofa_coco", "detofa_voc"]
    import nnabla_nas.dataset as nds
    from nnabla_nas.utils.cli.args import Configuration
    assert nds.detofa_voc.DataLoader is DataLoader and "detofa_voc" in nds.__all__
    conf = {"dataloader": {"detofa_voc": opts(synth, num_workers=1)},
            "args": {"comm": comm(), "search": True},
            "hparams": {"mini_batch_train": 4, "mini_batch_valid": 2}}
    loaders = Configuration.get_dataloader(None, conf)
    assert len(loaders["train"]) == 24 and len(loaders["valid"]) == 6 and len(loaders["test"]) == 10
    assert loaders["train"].next()["inputs"][0].shape == (4, 3, 64, 64)
    assert loaders["valid"].next()["targets"][0].shape == (2, 5, 16, 16)
    for ld in loaders.values():
        assert ld.transform is None
        ld.close()


def test_plain_detection_loader_checks():
    with pytest.raises(DataError, match="no images"):
        DetectionLoader([], 3, 2)
