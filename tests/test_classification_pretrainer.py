"""ClassificationPretrainer end to end (the demo's stand-in for an ImageNet supernet, issue 10 §4):
run from an experiment file, elastic paths trained, backbone.h5 + summary.json written, the backbone
loaded through ``"pretrained"`` into a detection run exactly, resume, and bad hparams refused."""
import json
import os
import subprocess
import sys
from collections import OrderedDict

import h5py
import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.data.crops import CropSet
from nnabla_nas_detofa.data.voc import load_voc
from nnabla_nas_detofa.nets.supernet import DetOFASupernet
from nnabla_nas_detofa.runners import launch
from nnabla_nas_detofa.runners.launch import ExperimentError, run_experiment
from nnabla_nas_detofa.runners.supernet_trainer import DetOFASupernetTrainer, step_rng
from nnabla_nas_detofa.space import SupernetConfig, mflops, space_from_spec
from nnabla_nas_detofa.transfer import BACKBONE_MARKER, backbone_shapes

from conftest import REPO

BIN = os.path.join(os.path.dirname(sys.executable), "nnabla_nas")
NET = {"num_classes": 5, "width_mult": 0.125, "divisor": 1, "space": "ofa"}
CFG = SupernetConfig(**{k: v for k, v in NET.items() if k != "space"})
EPOCHS, BATCH, CROP, SEED, LR = 2, 8, 64, 0, 2e-3


def cli(args, cwd):
    """The nnabla_nas command on this checkout's package (it may be installed from another one)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([BIN] + args, capture_output=True, text=True, cwd=cwd, timeout=600, env=env)


def loader(root):
    return {"detofa_voc": {"root": root, "train_split": "synth_train", "test_split": "synth_val",
                           "input_size": 64, "num_classes": 5, "max_objs": 16, "num_workers": 1}}


def pretrain_conf(root, out, **hp):
    h = {"epoch": EPOCHS, "batch_size_train": BATCH, "batch_size_valid": 16, "seed": SEED, "crop_size": CROP,
         "bn_calib_crops": 32, "print_frequency": 5, "space": "ofa", "sampling": "decision"}
    h.update(hp)
    return {"args": {"algorithm": "ClassificationPretrainer", "context": "cpu", "output_path": out},
            "dataloader": loader(root), "network": {"detofa_resnet50": dict(NET)},
            "optimizer": {"train": {"name": "Adam", "lr": LR, "lr_scheduler": {"name": "CosineScheduler"}}},
            "hparams": h}


def detect_conf(root, out, pretrained=None, epochs=1):
    net = dict(NET)
    if pretrained:
        net["pretrained"] = pretrained
    return {"args": {"algorithm": "DetOFASupernetTrainer", "search": True, "context": "cpu", "output_path": out},
            "dataloader": loader(root), "network": {"detofa_resnet50": net},
            "optimizer": {"train": {"name": "Adam", "lr": 1e-3}},
            "hparams": {"epoch": epochs, "batch_size_train": 8, "batch_size_valid": 8, "seed": SEED,
                        "valid_archs": [], "final_eval": False, "bn_calib_images": 8}}


def h5_arrays(path):
    """{name: array} of an nnabla .h5, read with h5py (independently of nnabla and the importer)."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[...]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="module")
def pretrained(tiny_voc, tmp_path_factory):
    """A 2-epoch pre-training run from an experiment file through the nnabla_nas command."""
    tmp = tmp_path_factory.mktemp("pretrain")
    out = str(tmp / "run")
    exp = tmp / "pretrain.json"
    exp.write_text(json.dumps(pretrain_conf(tiny_voc, out)))
    r = cli(["-f", str(exp), "-c", "cpu"], str(tmp))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


def train_crops(root):
    return CropSet(load_voc(root, "synth_train").records, CROP, BATCH, True, SEED)


def test_writes_backbone_and_summary(pretrained, tiny_voc):
    summary = json.load(open(os.path.join(pretrained, "summary.json")))
    crops = train_crops(tiny_voc)
    test = CropSet(load_voc(tiny_voc, "synth_val").records, CROP, BATCH, False, SEED)
    per_epoch = len(crops) // BATCH
    assert summary["crops"] == len(crops) and summary["test_crops"] == len(test)
    assert summary["epochs"] == EPOCHS and summary["steps"] == EPOCHS * per_epoch
    assert len(summary["history"]) == EPOCHS and summary["top1"] == summary["history"][-1]["top1"]
    for k in ("min", "max"):
        top1 = summary["top1"][k]
        correct = top1 * len(test) / 100.0           # a share of the held-out crops
        assert 0 <= top1 <= 100 and abs(correct - round(correct)) < 1e-6
        assert summary["mflops_at_crop_size"][k] == pytest.approx(
            mflops(space_from_spec("ofa").extreme(k == "max"), CFG, CROP, "backbone"))
    assert all(np.isfinite(h["loss"]) and h["loss"] > 0 for h in summary["history"])
    # the cosine schedule runs over the run's crop steps (not over the detection split's images)
    total = EPOCHS * per_epoch
    for e, h in enumerate(summary["history"]):
        assert h["lr"] == pytest.approx(LR * 0.5 * (1 + np.cos(np.pi * (e + 1) * per_epoch / total)), abs=1e-9)
    arrays = h5_arrays(os.path.join(pretrained, "backbone.h5"))
    shapes = backbone_shapes(CFG)
    assert set(arrays) == set(shapes) | {BACKBONE_MARKER}          # backbone only: no classifier, neck, heads
    assert all(arrays[k].shape == s for k, s in shapes.items())
    np.testing.assert_allclose(arrays[BACKBONE_MARKER], [1, 0.125, 1, 0])   # format 1, width, divisor, ReLU stem
    for f in ("log.txt", "run.json", "experiment.json", "checkpoint/checkpoint.json", "checkpoint/weights.h5"):
        assert os.path.isfile(os.path.join(pretrained, f)), f


def test_every_step_trains_a_uniformly_sampled_path(pretrained, tiny_voc):
    """Step t trains ``space.sample(step_rng(seed, t))`` (recomputed here): paths of every size in the
    space, and every backbone tensor moves while the neck and heads (no gradient) stay as initialised."""
    summary = json.load(open(os.path.join(pretrained, "summary.json")))
    space = space_from_spec("ofa")
    per_epoch = len(train_crops(tiny_voc)) // BATCH
    archs = [space.sample(step_rng(SEED, t), mode="decision") for t in range(EPOCHS * per_epoch)]
    for e, h in enumerate(summary["history"]):
        flops = [mflops(a, CFG, CROP, "backbone") for a in archs[e * per_epoch:(e + 1) * per_epoch]]
        assert h["paths"] == per_epoch
        assert h["sampled_mflops"] == pytest.approx([min(flops), max(flops)], abs=1e-4)
        assert h["sampled_mflops"][0] < h["sampled_mflops"][1]
    assert {a.d[1] for a in archs} == {0, 1, 2}
    nn.seed(SEED)                                      # the launcher seeds before building the network
    init = {k: p.d.copy() for k, p in DetOFASupernet(**NET).get_parameters().items()}
    trained = h5_arrays(os.path.join(pretrained, "checkpoint", "weights.h5"))
    for k in backbone_shapes(CFG):
        assert not np.array_equal(trained[k], init[k]), f"{k} was never trained"
    for k in init:
        if k.startswith(("neck/", "hm/", "wh/", "reg/", "input_")):
            np.testing.assert_array_equal(trained[k], init[k], err_msg=k)
    assert any(k.startswith("classifier/") for k in trained)


def test_backbone_loads_through_pretrained_into_a_detection_run(pretrained, tiny_voc, tmp_path, monkeypatch):
    """The detection supernet a run builds from ``"pretrained": backbone.h5`` holds every saved backbone
    tensor exactly, and its neck, heads and input normalisation are those of the same run from scratch."""
    def capture(self):
        return OrderedDict((k, p.d.copy()) for k, p in self.model.get_parameters().items())

    monkeypatch.setattr(DetOFASupernetTrainer, "run", capture)
    h5 = os.path.join(pretrained, "backbone.h5")
    start = run_experiment(detect_conf(tiny_voc, str(tmp_path / "transfer"), h5))
    scratch = run_experiment(detect_conf(tiny_voc, str(tmp_path / "scratch")))
    saved = h5_arrays(h5)
    shapes = backbone_shapes(CFG)
    assert set(start) == set(scratch)
    for k in start:
        if k in shapes:
            np.testing.assert_array_equal(start[k], saved[k], err_msg=k)
            assert not np.array_equal(start[k], scratch[k]), k
        else:
            np.testing.assert_array_equal(start[k], scratch[k], err_msg=k)
    assert sum(k in shapes for k in start) == len(shapes) and len(start) > len(shapes)


def test_detection_trains_from_the_pretrained_backbone(pretrained, tiny_voc, tmp_path):
    out = str(tmp_path / "det")
    run_experiment(detect_conf(tiny_voc, out, os.path.join(pretrained, "backbone.h5")))
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["epochs"] == 1 and np.isfinite(summary["history"][0]["train"]["loss/train"])
    conf = json.load(open(os.path.join(out, "experiment.json")))
    assert conf["network"]["detofa_resnet50"]["pretrained"].endswith("backbone.h5")


def test_a_killed_run_resumes_to_the_same_end(pretrained, tiny_voc, tmp_path, monkeypatch):
    """Killed mid-epoch after a step checkpoint, run again: the same backbone and figures as the
    uninterrupted run of the fixture."""
    out = str(tmp_path / "killed")
    conf = pretrain_conf(tiny_voc, out, checkpoint_every=3)
    per_epoch = len(train_crops(tiny_voc)) // BATCH
    kill_at = 15                   # killed in global step 15, just after the checkpoint of step 15
    assert per_epoch < kill_at < 2 * per_epoch and kill_at % 3 == 0
    real = CropSet.next
    calls = {"n": 0}

    def dies(self):
        if self.training:
            calls["n"] += 1
            if calls["n"] > kill_at:
                raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(CropSet, "next", dies)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(conf)
    assert not os.path.exists(os.path.join(out, "backbone.h5"))
    monkeypatch.setattr(CropSet, "next", real)
    run_experiment(conf)
    logs = "".join(open(os.path.join(out, f)).read() for f in os.listdir(out) if f.startswith("log"))
    assert f"Resumed from {os.path.join(out, 'checkpoint')}: epoch 1, step {kill_at}" in logs
    a = h5_arrays(os.path.join(out, "backbone.h5"))
    b = h5_arrays(os.path.join(pretrained, "backbone.h5"))
    for k in b:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    sa = json.load(open(os.path.join(out, "summary.json")))
    sb = json.load(open(os.path.join(pretrained, "summary.json")))
    assert sa["steps"] == sb["steps"] and sa["top1"] == sb["top1"]
    for ha, hb in zip(sa["history"], sb["history"]):
        assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-9) and ha["sampled_mflops"] == hb["sampled_mflops"]


@pytest.mark.parametrize("key,value,expect", [
    ("crop_size", 16, "hparams.crop_size=16"),
    ("crop_sise", 64, "unknown key 'crop_sise' (did you mean 'crop_size'?)"),
    ("sampling", "random", "hparams.sampling='random'"),
    ("epoch", 0, "hparams.epoch=0"),
    ("bn_calib_crops", 0, "hparams.bn_calib_crops=0"),
    ("crop_context", -1, "hparams.crop_context=-1"),
    ("space", "nope", "hparams.space"),
    ("valid_archs", ["min"], "unknown key 'valid_archs'"),
])
def test_bad_hparams_fail_with_one_line_before_work(tiny_voc, tmp_path, monkeypatch, key, value, expect):
    def no_work(*a, **k):
        raise AssertionError("work started before the hparams were checked")

    monkeypatch.setattr(launch, "build_dataloaders", no_work)
    out = tmp_path / "run"
    with pytest.raises(ExperimentError) as err:
        run_experiment(pretrain_conf(tiny_voc, str(out), **{key: value}))
    msg = str(err.value)
    assert "\n" not in msg and expect in msg, msg
    assert not out.exists()


def test_bad_hparam_on_the_command_line_is_one_line(tiny_voc, tmp_path):
    exp = tmp_path / "bad.json"
    exp.write_text(json.dumps(pretrain_conf(tiny_voc, str(tmp_path / "run"), crop_size=20)))
    r = cli(["-f", str(exp), "-c", "cpu"], str(tmp_path))
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() + r.stdout.splitlines() if "crop_size" in ln]
    assert len(lines) == 1 and "expected an integer >= 32" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


def test_demo_examples_compare_transfer_and_scratch_at_equal_steps():
    def load(name):
        return json.load(open(os.path.join(REPO, "examples", name)))
    scratch, transfer, pre = (load(n) for n in ("demo_ofa_uniform.json", "demo_ofa_uniform_pretrained.json",
                                                "demo_pretrain_classification.json"))
    assert pre["args"]["algorithm"] == "ClassificationPretrainer"
    assert pre["dataloader"] == scratch["dataloader"]
    (_, net), = pre["network"].items()
    assert net == scratch["network"]["detofa_resnet50"]
    assert transfer["network"]["detofa_resnet50"].pop("pretrained") == \
        os.path.join(pre["args"]["output_path"], "backbone.h5")
    for k in ("dataloader", "network", "optimizer", "hparams"):
        assert transfer[k] == scratch[k], k
    assert transfer["args"]["output_path"] != scratch["args"]["output_path"]


def test_paths_outside_the_networks_space_fail_before_the_first_step(tiny_voc, tmp_path, monkeypatch):
    from nnabla_nas_detofa.space import ConfigError
    conf = pretrain_conf(tiny_voc, str(tmp_path / "run"))
    conf["network"]["detofa_resnet50"]["space"] = "compofa"
    monkeypatch.setattr(CropSet, "next", lambda self: pytest.fail("a training step ran"))
    with pytest.raises(ConfigError) as err:
        run_experiment(conf)
    msg = str(err.value)
    assert "\n" not in msg and "hparams.space='ofa'" in msg and "'compofa'" in msg
    assert not os.path.exists(tmp_path / "run" / "checkpoint")
