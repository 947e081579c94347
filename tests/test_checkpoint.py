import json
import os

import pytest

from nnabla_nas_detofa.runners.checkpoint import find_checkpoint, load_checkpoint_info, save_checkpoint


def _writer(text):
    def w(path):
        with open(path, "w") as f:
            f.write(text)
    return w


def test_save_and_find(tmp_path):
    root = str(tmp_path)
    assert find_checkpoint(root) is None
    save_checkpoint(root, {"epoch": 1}, {"weights.h5": _writer("a")})
    path = find_checkpoint(root)
    assert load_checkpoint_info(path)["epoch"] == 1
    save_checkpoint(root, {"epoch": 2}, {"weights.h5": _writer("b")})
    path = find_checkpoint(root)
    assert load_checkpoint_info(path)["epoch"] == 2
    assert open(os.path.join(path, "weights.h5")).read() == "b"
    assert sorted(os.listdir(root)) == ["checkpoint"]


def test_kill_while_writing_keeps_the_previous_checkpoint(tmp_path):
    root = str(tmp_path)
    save_checkpoint(root, {"epoch": 1}, {"weights.h5": _writer("a")})

    def dies(path):
        with open(path, "w") as f:
            f.write("partial")
        raise KeyboardInterrupt  # the process is killed mid-write

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(root, {"epoch": 2}, {"weights.h5": dies})
    path = find_checkpoint(root)
    assert load_checkpoint_info(path)["epoch"] == 1
    assert open(os.path.join(path, "weights.h5")).read() == "a"


def test_kill_between_renames_finds_the_new_one(tmp_path):
    root = str(tmp_path)
    save_checkpoint(root, {"epoch": 1}, {"weights.h5": _writer("a")})
    save_checkpoint(root, {"epoch": 2}, {"weights.h5": _writer("b")})
    # simulate: checkpoint -> checkpoint.old done, checkpoint.new -> checkpoint not yet
    os.replace(os.path.join(root, "checkpoint"), os.path.join(root, "checkpoint.new"))
    assert load_checkpoint_info(find_checkpoint(root))["epoch"] == 2
    # and a save after that recovers the normal layout
    save_checkpoint(root, {"epoch": 3}, {"weights.h5": _writer("c")})
    assert sorted(os.listdir(root)) == ["checkpoint"]
    assert json.load(open(os.path.join(root, "checkpoint", "checkpoint.json")))["epoch"] == 3
