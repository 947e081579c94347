"""examples/mini (``make reproduce-mini``): the training experiments pass the launcher's checks and
compare like with like (same data, network, optimizer, batch, epochs); both searches use the same
budgets and search settings."""
import json
import os

import pytest

from nnabla_nas_detofa.runners.launch import check_experiment, check_hparams, derive_shapes, runner_class

from conftest import REPO

MINI = os.path.join(REPO, "examples", "mini")


def load(name):
    path = os.path.join(MINI, name + ".json")
    return json.load(open(path)), path


@pytest.mark.parametrize("name", ["ofa_uniform", "detofa"])
def test_training_experiments_are_valid(name):
    conf, path = load(name)
    conf = check_experiment(conf, path)
    derive_shapes(conf, path)
    check_hparams(conf, runner_class(conf["args"]["algorithm"], path), path)


def test_equal_training_settings():
    a, _ = load("ofa_uniform")
    b, _ = load("detofa")
    assert a["args"]["algorithm"] == "DetOFASupernetTrainer" and b["args"]["algorithm"] == "DetOFA"
    for key in ("dataloader", "network", "optimizer"):
        assert a[key] == b[key], key
    for key in ("epoch", "batch_size_train", "space", "seed", "bn_calib_images"):
        assert a["hparams"][key] == b["hparams"][key], key
    assert "space_schedule" not in a["hparams"]          # OFA w/o PS: uniform over A


def test_searches_share_budgets_and_settings():
    a, path = load("ofa_uniform_search")
    b, _ = load("detofa_search")
    check_experiment(a, path)
    assert a["args"]["algorithm"] == b["args"]["algorithm"] == "DetOFASearcher"
    same = ("budgets", "algorithm", "population", "sample", "generations", "fitness", "seed", "n_buckets")
    assert {k: a["hparams"][k] for k in same} == {k: b["hparams"][k] for k in same}
    assert a["hparams"]["training_run"] == load("ofa_uniform")[0]["args"]["output_path"]
    assert b["hparams"]["training_run"] == load("detofa")[0]["args"]["output_path"]
    assert a["network"]["detofa_resnet50"]["weights"].startswith(a["hparams"]["training_run"] + "/")
    assert b["network"]["detofa_resnet50"]["weights"].startswith(b["hparams"]["training_run"] + "/")
