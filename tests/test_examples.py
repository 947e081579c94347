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
