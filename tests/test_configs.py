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


def test_nnabla_nas_runs_an_experiment_in_the_hydra_form(tiny_voc, tmp_path, capsys):
    from nnabla_nas_detofa.cli.main import main
    out = str(tmp_path / "hydra_run")
    words = ["experiment=detofa/demo_ofa_uniform", "~dataloader.detofa_voc.synthetic",
             f"dataloader.detofa_voc.root={tiny_voc}", "dataloader.detofa_voc.input_size=64",
             "dataloader.detofa_voc.num_workers=0", "network.detofa_resnet50.width_mult=0.0625",
             "hparams.epoch=1", "hparams.batch_size_train=4", "hparams.mini_batch_train=4",
             "hparams.batch_size_valid=4", "hparams.mini_batch_valid=4", "hparams.bn_calib_images=8",
             "+hparams.final_eval=false", "hparams.checkpoint_every=0"]
    assert main(words + ["-o", out]) == 0
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["epochs"] == 1 and summary["network"]["width_mult"] == 0.0625
    assert main(["experiment=detofa/nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "experiment=detofa/nope" in err[0] and "detofa/demo_ofa_uniform" in err[0]
