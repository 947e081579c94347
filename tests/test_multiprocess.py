"""Multi-process runs without MPI: the batch check per process, and path labelling split over
ranks (each labels its share on the same measurement sets, rank 0 gathers) giving the labels of
one process."""
import json
import os

import pytest

from nnabla_nas_detofa.path_filter import PathSet
from nnabla_nas_detofa.runners.launch import ExperimentError, check_batches
from conftest import REPO
from simulated_ranks import run_ranks
from test_path_filter_runner import experiment


@pytest.mark.parametrize("name", ["voc_ofa_uniform.json", "coco_ofa_uniform.json"])
def test_paper_examples_pass_the_batch_check_on_4_processes(name):
    hp = json.load(open(os.path.join(REPO, "examples", name)))["hparams"]
    check_batches(dict(hp), 4, name)
    check_batches(dict(hp), 1, name)


def test_batch_check_explains_itself():
    hp = {"batch_size_train": 32, "mini_batch_train": 32, "batch_size_valid": 32, "mini_batch_valid": 32}
    with pytest.raises(ExperimentError, match="per-process batch 8 .* mini_batch_train"):
        check_batches(dict(hp), 4, "x.json")
    with pytest.raises(ExperimentError, match="must divide by the 3 processes"):
        check_batches({"batch_size_train": 32, "batch_size_valid": 32}, 3, "x.json")
    hp = {"batch_size_train": 32, "batch_size_valid": 32}
    check_batches(hp, 4, "x.json")
    assert hp["mini_batch_train"] == 8 and hp["mini_batch_valid"] == 8


def test_labelling_split_over_ranks_gives_the_labels_of_one_process(tiny_voc, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    from nnabla_nas_detofa.runners.launch import run_experiment
    conf = experiment(tiny_voc, one, repeatability_paths=0)
    conf["hparams"].update({"batch_size_train": 8, "batch_size_valid": 8, "mini_batch_train": 4,
                            "mini_batch_valid": 4})
    run_experiment(conf)
    conf2 = json.loads(json.dumps(conf))
    conf2["args"]["output_path"] = two
    run_ranks(conf2, 2)
    a, b = PathSet.read(os.path.join(one, "paths.jsonl")), PathSet.read(os.path.join(two, "paths.jsonl"))
    assert [r.arch.key() for r in a] == [r.arch.key() for r in b]
    assert list(a.val_loss) == list(b.val_loss)
    assert not [f for f in os.listdir(two) if f.startswith("paths.partial")]
