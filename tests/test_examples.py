"""Every shipped experiment file passes the launcher's checks (structure, keys, loader options)."""
import glob
import json
import os

import pytest

from nnabla_nas_detofa.data.loader import loader_options
from nnabla_nas_detofa.nets.detofa_resnet50 import SearchNet
from nnabla_nas_detofa.runners.launch import check_experiment, derive_shapes
from nnabla_nas_detofa.runners.optim import make_optimizer

from conftest import REPO

EXAMPLES = sorted(glob.glob(os.path.join(REPO, "examples", "*.json")))


def test_examples_exist():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"demo_ofa_uniform.json", "voc_ofa_uniform.json", "coco_ofa_uniform.json"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_is_valid(path):
    conf = check_experiment(json.load(open(path)), path)
    derive_shapes(conf, path)
    (name, opts), = conf["dataloader"].items()
    opts = {k: v for k, v in opts.items() if k != "synthetic"}
    loader_options(opts, "coco" if "coco" in name else "voc", f"{path}: dataloader.{name}")
    (net, attrs), = conf["network"].items()
    assert net == "detofa_resnet50"
    assert attrs["num_classes"] == conf["hparams"]["target_shapes"][0][0]
    for key, spec in conf["optimizer"].items():
        make_optimizer(dict(spec), conf["hparams"]["epoch"], 10, f"optimizer.{key}")
    import inspect
    from nnabla_nas_detofa.space.config import CONFIG_KEYS
    assert set(attrs) <= set(inspect.signature(SearchNet).parameters) | set(CONFIG_KEYS)


def test_paper_settings():
    voc = json.load(open(os.path.join(REPO, "examples", "voc_ofa_uniform.json")))
    assert voc["hparams"]["epoch"] == 70 and voc["hparams"]["batch_size_train"] == 32
    assert voc["optimizer"]["train"]["lr"] == 5e-4
    assert voc["optimizer"]["train"]["lr_scheduler"]["steps"] == [45, 60]
    assert voc["dataloader"]["detofa_voc"]["input_size"] == 384
    coco = json.load(open(os.path.join(REPO, "examples", "coco_ofa_uniform.json")))
    assert coco["hparams"]["epoch"] == 140 and coco["hparams"]["batch_size_train"] == 64
    assert coco["optimizer"]["train"]["lr_scheduler"]["name"] == "CosineScheduler"
    assert coco["dataloader"]["detofa_coco"]["input_size"] == 512


DETOFA_EXAMPLES = ("demo_detofa.json", "demo_detofa_long.json", "voc_detofa.json", "coco_detofa.json")


@pytest.mark.parametrize("name", DETOFA_EXAMPLES)
def test_detofa_example_passes_every_check_before_data(name, tmp_path, monkeypatch):
    """The launcher's whole ``prepare`` (runner schema included) accepts the example, run from a fresh
    folder; the paper's ImageNet supernet is not shipped, so its file check is the only one left out."""
    from nnabla_nas_detofa.runners import launch
    from nnabla_nas_detofa.runners.detofa import DetOFA
    conf = json.load(open(os.path.join(REPO, "examples", name)))
    if conf["network"]["detofa_resnet50"].get("pretrained"):
        monkeypatch.setattr(launch, "check_network_files", lambda conf, source: None)
    monkeypatch.chdir(tmp_path)
    pre = conf["hparams"].get("filter_pretrain")
    if pre:   # a file of the repository, relative to where the demo runs (its root, as `make demo`)
        os.makedirs(os.path.dirname(pre["paths"]) or ".", exist_ok=True)
        os.symlink(os.path.join(REPO, pre["paths"]), pre["paths"])
    checked, cls = launch.prepare(conf, name)
    assert cls is DetOFA
    hp = checked["hparams"]
    # the phases: warm-up epochs, then path-pruned training until `epoch` (the whole supernet training)
    assert 0 < hp["warmup_epochs"] < hp["epoch"]
    pr = hp["pruning"]
    assert (pr["strategy"], pr["r_op1"], pr["r_op2"], pr["r_path"]) == ("flops_score_all", 0.1, 0.3, 0.25)


def test_detofa_paper_settings():
    voc = json.load(open(os.path.join(REPO, "examples", "voc_detofa.json")))
    hp, opt = voc["hparams"], voc["optimizer"]["train"]
    assert (hp["warmup_epochs"], hp["epoch"], hp["batch_size_train"]) == (5, 70, 32)
    assert opt["name"] == "Adam" and opt["lr"] == 5e-4 and opt["lr_scheduler"]["steps"] == [45, 60]
    assert hp["paths_per_bucket"] * hp["n_buckets"] == 500
    coco = json.load(open(os.path.join(REPO, "examples", "coco_detofa.json")))
    hp, opt = coco["hparams"], coco["optimizer"]["train"]
    assert (hp["warmup_epochs"], hp["epoch"], hp["batch_size_train"]) == (10, 70, 64)
    assert opt["lr"] == 5e-4 and opt["lr_scheduler"]["name"] == "CosineScheduler"
    assert hp["paths_per_bucket"] * hp["n_buckets"] == 500
    for conf in (voc, coco):
        assert conf["network"]["detofa_resnet50"]["pretrained"] == "weights/ofa_supernet_resnet50"
        assert conf["args"]["context"] == "cudnn"


def _demo_steps(name):
    conf = json.load(open(os.path.join(REPO, "examples", name)))
    hp, dl = conf["hparams"], conf["dataloader"]["detofa_voc"]
    from nnabla_nas_detofa.data.pipeline import search_split
    opts = loader_options({k: v for k, v in dl.items() if k != "synthetic"})
    n_train = len(search_split(dl["synthetic"]["num_train"], opts["search_valid_fraction"], opts["seed"])[0])
    steps_per_epoch = n_train // hp["batch_size_train"]
    warm, pruned = hp["warmup_epochs"], hp["epoch"] - hp["warmup_epochs"]
    assert warm + pruned == hp["epoch"] and warm >= 1 and pruned >= 1
    assert conf["args"]["algorithm"] == "DetOFA" and conf["args"]["context"] == "cpu"
    return conf, steps_per_epoch


def test_demo_detofa_long_trains_long_enough_to_detect():
    """The long demo's phases add up to its supernet training, and that training is past the ~1,000
    steps below which a CenterNet on the synthetic shapes is seed noise (~2,500-3,000 steps reach ~20 %)."""
    conf, steps_per_epoch = _demo_steps("demo_detofa_long.json")
    hp = conf["hparams"]
    assert hp["warmup_epochs"] * steps_per_epoch >= 500    # the filter's labels come from past the heatmap plateau
    assert hp["epoch"] * steps_per_epoch >= 2400
    assert open(os.path.join(REPO, "Makefile")).read().count("examples/demo_detofa_long.json") == 1


def test_demo_detofa_is_past_the_seed_noise_and_starts_with_the_largest_path():
    """The 20-minute demo: past the ~1,000 steps of seed noise, and from scratch it begins with the
    largest path alone (measured: 3.0-3.8 % test mAP at 1,440 steps against 0.6 % without), then
    a uniform warm-up over A before the paths are labelled."""
    conf, steps_per_epoch = _demo_steps("demo_detofa.json")
    hp = conf["hparams"]
    assert hp["epoch"] * steps_per_epoch >= 1000
    assert 1 <= hp["warmup_largest_epochs"] < hp["warmup_epochs"]
    assert (hp["warmup_epochs"] - hp["warmup_largest_epochs"]) * steps_per_epoch >= 200
    assert "pretrained" not in conf["network"]["detofa_resnet50"]
    assert open(os.path.join(REPO, "Makefile")).read().count("examples/demo_detofa.json") == 1


def test_demo_detofa_fine_tunes_a_filter_pre_trained_on_its_source_paths():
    """The demo's filter starts from one pre-trained on 300 labelled paths of another demo supernet
    (the paper's source supernet) of the same network, so the target's buckets apply; its 4 paths
    per bucket split into 2 training and 2 validation paths (a within-bucket pair each to select on)."""
    import numpy as np
    from nnabla_nas_detofa.path_filter import PathSet
    from nnabla_nas_detofa.path_filter.train import split_indices
    from nnabla_nas_detofa.space import SupernetConfig, get_space, space_buckets
    conf = json.load(open(os.path.join(REPO, "examples", "demo_detofa.json")))
    hp, net = conf["hparams"], conf["network"]["detofa_resnet50"]
    source = PathSet.read(os.path.join(REPO, hp["filter_pretrain"]["paths"]), get_space(hp["space"]))
    assert len(source) >= 300
    cfg = SupernetConfig(num_classes=net["num_classes"], width_mult=net["width_mult"], divisor=net["divisor"])
    b = space_buckets(get_space(hp["space"]), cfg, conf["dataloader"]["detofa_voc"]["input_size"], hp["n_buckets"])
    assert b.lo - 1e-6 <= source.flops.min() and source.flops.max() <= b.hi + 1e-6
    assert np.bincount(b.indices(source.flops), minlength=b.n).min() >= 30
    bucket = np.repeat(np.arange(hp["n_buckets"]), hp["paths_per_bucket"])
    split = split_indices(bucket, hp["filter"]["val_fraction"], hp["seed"], hp["filter"]["test_fraction"])
    assert np.bincount(bucket[split.val]).min() >= 2 and np.bincount(bucket[split.train]).min() >= 2
