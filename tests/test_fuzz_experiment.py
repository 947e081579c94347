"""Fuzz: malformed experiment files through ``nnabla_nas -f`` (in-process ``main``).

Every value of a valid experiment is replaced by values of the wrong type, every object gets a
misspelt key, required keys go missing, the file's bytes are cut and flipped, and values are set
out of range one at a time. Each variant must stop with exit status 2 and one stderr line naming
the file and the key, before any work: the network factory is replaced by a sentinel, so a
variant that passes every check is seen (``Reached``) instead of training. Nothing may be written
anywhere (the data folder and the test folder are compared before and after).
"""
import json
import os
import shutil

import pytest
from fuzz_cases import DEEP, NAN, assert_one_line, bad_values_for, byte_variants, call, json_text, leaves, replaced, \
    snapshot
from test_cli_run import experiment
from test_data_fixtures import voc_object, write_voc

from nnabla_nas_detofa.cli.main import main
from nnabla_nas_detofa.runners import launch


class Reached(Exception):
    """The run passed every check before building its network."""


@pytest.fixture
def guarded(monkeypatch):
    def stop(*a, **k):
        raise Reached()
    monkeypatch.setattr(launch, "build_network", stop)


def base(root, tmp_path):
    return experiment(root, str(tmp_path / "out"), epochs=1)


def run(tmp_path, conf=None, raw=None, argv=()):
    p = tmp_path / "exp.json"
    p.write_bytes(raw if raw is not None else json_text(conf))
    return str(p), call(main, ["-f", str(p), *argv], sentinel=(Reached,))


def test_the_base_experiment_passes_every_check(tiny_voc, tmp_path, guarded):
    _, o = run(tmp_path, base(tiny_voc, tmp_path))
    assert isinstance(o.exc, Reached), o


def test_every_setting_with_a_value_of_the_wrong_type(tiny_voc, tmp_path, guarded):
    data = snapshot(tiny_voc)
    conf = base(tiny_voc, tmp_path)
    n = 0
    for path, value in leaves(conf):
        for bad in bad_values_for(value):
            p, o = run(tmp_path, replaced(conf, path, bad))
            needle = "nested too deeply" if bad is DEEP else path[-1]
            assert_one_line(o, p, needle, what=f"{'.'.join(path)}={bad!r}"[:200])
            n += 1
    assert n > 200
    for path in (("hparams", "epoch"), ("hparams", "batch_size_train"), ("optimizer", "train", "lr"),
                 ("dataloader", "detofa_voc", "root"), ("network", "detofa_resnet50", "num_classes"),
                 ("hparams", "seed"), ("dataloader", "detofa_voc", "input_size")):
        p, o = run(tmp_path, replaced(conf, path, None))        # null where a value is required
        assert_one_line(o, p, path[-1], what=".".join(path))
    assert snapshot(tiny_voc) == data
    assert sorted(os.listdir(tmp_path)) == ["exp.json"]          # no output folder, nothing else


def _objects(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _objects(v, path + (k,))


def test_misspelt_and_missing_keys(tiny_voc, tmp_path, guarded):
    conf = base(tiny_voc, tmp_path)
    for path, obj in _objects(conf):
        if not obj:
            continue
        key = next(iter(obj))
        typo = key[:-1] + ("s" if not key.endswith("s") else "x")
        changed = replaced(conf, path + (typo,), 1) if path else dict(conf, **{typo: 1})
        p, o = run(tmp_path, changed)
        assert_one_line(o, p, typo, what=f"unknown key {'.'.join(path + (typo,))}")
    for path in (("hparams", "epoch"), ("hparams", "batch_size_train"), ("hparams", "batch_size_valid"),
                 ("args", "algorithm"), ("dataloader", "detofa_voc", "root"), ("optimizer", "train", "lr"),
                 ("hparams",), ("network",), ("dataloader",)):
        changed = json.loads(json.dumps(conf))
        o_ = changed
        for k in path[:-1]:
            o_ = o_[k]
        del o_[path[-1]]
        p, o = run(tmp_path, changed)
        assert_one_line(o, p, path[-1], what=f"missing {'.'.join(path)}")
    p, o = run(tmp_path, raw=b'{"hparams": {"epoch": 1}, "hparams": {"epoch": 2}}')
    assert_one_line(o, p, "'hparams' appears twice")


OUT_OF_RANGE = [
    (("hparams", "print_frequency"), 0), (("hparams", "checkpoint_every"), -1), (("hparams", "checkpoint_every"), "5"),
    (("hparams", "seed"), -1), (("hparams", "seed"), 2 ** 40), (("hparams", "seed"), 1.5),
    (("hparams", "loss_weights"), [1, 2]), (("hparams", "loss_weights"), [0, 0, 0]),
    (("hparams", "loss_weights"), [NAN, 1, 1]), (("hparams", "sampling"), "random"),
    (("hparams", "space"), "nope"), (("hparams", "space_schedule"), [["ps1", 0]]),
    (("hparams", "space_schedule"), [["ps1", 1, 10 ** 400]]), (("hparams", "space_schedule"), [["ps1", 1, -1]]),
    (("hparams", "valid_archs"), ["mid"]), (("hparams", "bn_calib_images"), -1),
    (("hparams", "measurement_cache_mb"), -1), (("hparams", "mini_batch_train"), 3),
    (("hparams", "epoch"), 10 ** 400),
    (("optimizer", "train", "lr"), "0.1"), (("optimizer", "train", "lr"), -1), (("optimizer", "train", "lr"), 0),
    (("optimizer", "train", "lr"), NAN), (("optimizer", "train", "beta1"), "x"),
    (("optimizer", "train", "lr_scheduler"), {"name": "StepScheduler", "steps": [1], "gamma": "x"}),
    (("optimizer", "train", "lr_scheduler"), {"name": "StepScheduler", "steps": [60, 45]}),
    (("optimizer", "train", "lr_scheduler"), {"name": "StepScheduler", "steps": []}),
    (("optimizer", "train", "lr_scheduler"), {"name": "CosineScheduler", "warmup_epochs": "2"}),
    (("optimizer", "train", "lr_scheduler"), {"name": "CosineScheduler", "steps": [3]}),
    (("optimizer", "train", "lr_scheduler"), {"name": "Cosine"}),
    (("optimizer",), "Adam"), (("optimizer",), [{"name": "Adam"}]), (("optimizer", "train"), "Adam"),
    (("optimizer", "train"), ["Adam"]), (("optimizer", "valid"), {"name": "Adam", "lr": 1e-3}),
    (("args", "type_config"), "double"), (("args", "device_id"), -1), (("args", "context"), "gpu"),
    (("network", "detofa_resnet50", "arch"), {"d": [1]}), (("network", "detofa_resnet50", "widht_mult"), 1.0),
    (("network", "detofa_resnet50", "space"), "nope"), (("network", "detofa_resnet50", "divisor"), 0),
    (("network", "detofa_resnet50", "neck_channels"), [1, 2]),
    (("dataloader", "detofa_voc", "input_size"), 100), (("dataloader", "detofa_voc", "input_size"), 0),
    (("dataloader", "detofa_voc", "augment"), {"flip": 2}), (("dataloader", "detofa_voc", "augment"), {"flip": NAN}),
    (("dataloader", "detofa_voc", "augment"), {"scale_range": [1, float("inf")]}),
    (("dataloader", "detofa_voc", "augment"), {"scale_range": ["a", "b"]}),
    (("dataloader", "detofa_voc", "num_workers"), 10 ** 6), (("dataloader", "detofa_voc", "search_valid_fraction"), 1),
    (("dataloader", "detofa_voc", "classes"), [1, 2]), (("dataloader", "detofa_voc", "train_split"), "synth_nope"),
    (("dataloader", "detofa_voc", "test_split"), "synth_nope"), (("dataloader", "detofa_voc", "format"), "yolo"),
    (("dataloader", "detofa_voc", "synthetic"), "yes"),
]


@pytest.mark.parametrize("path, value", OUT_OF_RANGE, ids=lambda v: str(v)[:40])
def test_values_out_of_range(tiny_voc, tmp_path, guarded, path, value):
    p, o = run(tmp_path, replaced(base(tiny_voc, tmp_path), path, value))
    assert_one_line(o, p, path[-1] if path[-1] != "lr_scheduler" else "lr_scheduler", what=f"{path}={value!r}")


def test_num_classes_that_disagree_with_the_data(tiny_voc, tmp_path, guarded):
    conf = base(tiny_voc, tmp_path)
    conf["network"]["detofa_resnet50"]["num_classes"] = 3
    del conf["dataloader"]["detofa_voc"]["num_classes"]
    p, o = run(tmp_path, conf)
    assert_one_line(o, p, "num_classes", "5 classes")


def test_byte_variants_of_the_file(tiny_voc, tmp_path, guarded):
    text = json.dumps(base(tiny_voc, tmp_path), indent=1).encode()
    passed = 0
    for name, raw in byte_variants(text, 40, seed=1):
        p, o = run(tmp_path, raw=raw)
        if o.exc is not None:       # still a valid experiment (e.g. a digit changed): it ran its checks
            passed += 1
            continue
        assert_one_line(o, p, what=name)
    assert passed < 20
    for raw, needle in ((b"[" * 5000 + b"]" * 5000, "nested too deeply"), (b'{"a": ' + b"9" * 5000 + b"}", "invalid"),
                        (b'{"args": "\xff"}', "not UTF-8"), (b"", "invalid JSON"), (b"\xef\xbb\xbf{", "invalid JSON")):
        p, o = run(tmp_path, raw=raw)
        assert_one_line(o, p, needle)


def test_output_folder_guards(tiny_voc, tmp_path, guarded):
    conf = base(tiny_voc, tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    p, o = run(tmp_path, conf, argv=["-o", str(afile)])
    assert_one_line(o, p, "afile", "is a file")
    out = tmp_path / "out"
    out.mkdir()
    for content, needle in ((json.dumps({"algorithm": "DetOFASupernetTrainer", "network": {"num_classes": 7},
                                         "input_size": 64}), "other settings"),
                            ("[1]", "expected an object"), ("\udcff", "not UTF-8"), ("{", "invalid JSON")):
        (out / "run.json").write_bytes(content.encode("utf-8", "surrogateescape"))
        before = snapshot(tmp_path)
        p, o = run(tmp_path, conf)
        assert_one_line(o, p, "run.json" if needle != "other settings" else "out", needle)
        assert snapshot(tmp_path) == before
    assert afile.read_text() == "mine"
    for flag in (["-t", "double"], ["-c", "tpu"], ["--nope"], []):
        o = call(main, flag)
        assert_one_line(o, "error", what=str(flag))


def test_synthetic_never_writes_into_a_folder_that_holds_anything_else(tmp_path, guarded):
    real = str(tmp_path / "VOCdevkit")            # a user's VOC folder: classes.txt, VOC2007/...
    write_voc(real, "2007", {"000001": (32, 24, [voc_object("dog", (1, 1, 10, 10))])}, {"trainval": ["000001"]},
              classes=["dog", "cat"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for root in (real, str(mine), str(tmp_path / "mine" / "notes.txt")):
        conf = experiment(root, str(tmp_path / "out"), epochs=1)
        conf["dataloader"]["detofa_voc"]["synthetic"] = {"num_train": 4, "num_val": 2, "image_size": 32}
        before = snapshot(tmp_path)
        p, o = run(tmp_path, conf)
        assert_one_line(o, p, "root", "never writes into a folder that holds anything else", what=root)
        after = snapshot(tmp_path)
        after.pop("exp.json"), before.pop("exp.json", None)
        assert after == before


def test_bad_images_are_found_before_step_0(tiny_voc, tmp_path, guarded):
    root = str(tmp_path / "voc")
    shutil.copytree(tiny_voc, root)
    jpg = os.path.join(root, "VOCsynth", "JPEGImages")
    bad = sorted(os.listdir(jpg))[3:6]
    for name in bad[:2]:
        with open(os.path.join(jpg, name), "r+b") as f:
            f.truncate(os.path.getsize(f.name) // 2)
    with open(os.path.join(jpg, bad[2]), "wb") as f:
        f.write(b"")
    conf = experiment(root, str(tmp_path / "out"), epochs=1)
    data = snapshot(root)
    p, o = run(tmp_path, conf)
    assert_one_line(o, p, bad[0], "truncated", "and 2 more image problem(s)")
    assert snapshot(root) == data and not os.path.exists(tmp_path / "out")
