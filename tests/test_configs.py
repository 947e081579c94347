"""configs/: the hydra `experiment=` files say exactly what the JSON examples say."""
import glob
import json
import os

import pytest

from nnabla_nas_detofa.cli.errors import UserError
from nnabla_nas_detofa.cli.hydra_configs import (available, compose_experiment, experiment_path, experiment_yaml,
                                                 is_hydra_argv)
from conftest import REPO

EXAMPLES = sorted(glob.glob(os.path.join(REPO, "examples", "*.json")))


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_every_example_has_its_generated_yaml_and_composes_to_the_same_experiment(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    conf = json.load(open(path))
    yml = experiment_path(stem)
    assert os.path.isfile(yml), f"run scripts/make_configs.py: {yml} is missing"
    assert open(yml).read() == experiment_yaml(conf, stem), f"run scripts/make_configs.py: {yml} is stale"
    assert compose_experiment([f"experiment=detofa/{stem}"]) == conf


def test_no_yaml_without_its_json():
    stems = {os.path.splitext(os.path.basename(p))[0] for p in EXAMPLES}
    assert {a.split("/", 1)[1] for a in available()} == stems


def test_overrides_and_argv_detection():
    stem = os.path.splitext(os.path.basename(EXAMPLES[0]))[0]
    conf = compose_experiment([f"experiment=detofa/{stem}", "hparams.epoch=3", "args.output_path=runs/x"])
    assert conf["hparams"]["epoch"] == 3 and conf["args"]["output_path"] == "runs/x"
    assert is_hydra_argv(["experiment=detofa/x", "hparams.epoch=2"])
    assert not is_hydra_argv(["-f", "x.json"]) and not is_hydra_argv(["hparams.epoch=2"])
    with pytest.raises(UserError, match="experiment=detofa/nope"):
        compose_experiment(["experiment=detofa/nope"])
