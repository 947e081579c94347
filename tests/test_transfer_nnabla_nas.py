"""NNablaNAS's own OFA-ResNet50 supernet (.h5) imported into ours reproduces NNablaNAS's stage outputs.

The fixture (``tests/data/nnabla_nas_ofa_resnet50``, see its README) was made with NNablaNAS's
``ofa_resnet50.SearchNet`` from its git source under nnabla 1.39: random weights and BN statistics,
the stage outputs of its supernet forward after ``set_active_subnet`` in evaluation mode. NNablaNAS's
stem uses ReLU6 (``stem_activation="relu6"`` here).
"""
import json
import os

import h5py
import numpy as np
import pytest

from nnabla_nas_detofa.nets import DetOFASupernet, extract, read_parameters
from nnabla_nas_detofa.space import SupernetConfig
from nnabla_nas_detofa.transfer import TransferError, import_supernet, nnabla_nas_name_map
from nnabla_nas_detofa.transfer.importer import read_h5_parameters

from conftest import REPO
from transfer_helpers import TOLERANCE, raw_images, stage_errors, stage_outputs

FIXTURE = os.path.join(REPO, "tests", "data", "nnabla_nas_ofa_resnet50")
CASES = json.load(open(os.path.join(FIXTURE, "cases.json")))
H5 = os.path.join(FIXTURE, CASES["weights"])
CFG = dict(num_classes=3, width_mult=CASES["width_mult"], divisor=CASES["channel_divisible"],
           bn_eps=CASES["bn_eps"], bn_decay=CASES["bn_decay"], stem_activation=CASES["stem_activation"])


@pytest.fixture(scope="module")
def reference():
    return np.load(os.path.join(FIXTURE, "reference.npz"))


@pytest.fixture(scope="module")
def supernet():
    return DetOFASupernet(pretrained=H5, **CFG)


def test_report_and_mapping():
    arrays, report = import_supernet(H5, SupernetConfig(**CFG))
    assert report["loaded"] == len(arrays) == 305 and report["unused_counters"] == 0
    assert [d.split(" ")[0] for d in report["dropped"]] == ["classifier/0/linear/linear/_W",
                                                             "classifier/0/linear/linear/_b"]
    assert "NNablaNAS" in report["format"] and report["source_stem_activation"] == "relu6" and report["note"] is None
    src = read_parameters(H5)   # nnabla's own reader
    assert len(src) == 307 and list(src) == list(read_h5_parameters(H5))
    for nas, ours in nnabla_nas_name_map().items():
        assert np.array_equal(arrays[ours], src[nas]), nas


@pytest.mark.parametrize("case", [c["case"] for c in CASES["cases"]])
def test_stage_outputs_match_nnabla_nas(supernet, reference, case):
    c = next(c for c in CASES["cases"] if c["case"] == case)
    supernet.set_arch(c["arch"])
    x = raw_images(reference["x"])
    path_err = stage_errors(stage_outputs(supernet, x), reference, case)
    static_err = stage_errors(stage_outputs(extract(supernet), x), reference, case)
    assert max(path_err) < TOLERANCE, path_err
    assert max(static_err) < TOLERANCE, static_err


def test_relu_stem_differs_and_says_so(reference):
    """With once-for-all's ReLU stem the import is not exact where the stem's residual unit is active,
    and the report says what to set."""
    net = DetOFASupernet(pretrained=H5, **dict(CFG, stem_activation="relu"))
    assert "stem_activation" in net.pretrained_report["note"] and "relu6" in net.pretrained_report["note"]
    net.set_arch(CASES["cases"][0]["arch"])
    assert CASES["cases"][0]["arch"]["d"][0] == 2
    assert max(stage_errors(stage_outputs(net, raw_images(reference["x"])), reference, 0)) > 1e-2


def _h5_variant(tmp_path, edit):
    """The fixture with one edit, in nnabla's parameter .h5 layout (written with h5py: nnabla's writer
    takes seconds for 300 parameters)."""
    params = read_h5_parameters(H5)
    edit(params)
    path = str(tmp_path / "variant.h5")
    with h5py.File(path, "w") as f:
        for i, (k, v) in enumerate(params.items()):
            f[k] = v
            f[k].attrs["need_grad"] = not k.endswith(("_mean", "_var"))
            f[k].attrs["index"] = i
    return path


@pytest.mark.parametrize("edit, expect", [
    (lambda p: p.pop("input_stem/1/conv/bn/bn/_mean"), ["'input_stem/1/conv/bn/bn/_mean'", "'stem/res/bn/mean'",
                                                        "is missing"]),
    (lambda p: p.__setitem__("blocks/3/downsample/conv/conv/_W", np.zeros((4, 4, 1, 1), np.float32)),
     ["left-over tensor 'blocks/3/downsample/conv/conv/_W'"]),
    (lambda p: p.__setitem__("blocks/17/conv2/conv/conv/_W", np.zeros((8, 8, 3, 3), np.float32)),
     ["'blocks/17/conv2/conv/conv/_W' has shape (8, 8, 3, 3)", "expects (88, 88, 3, 3)",
      "'stages/3/3/conv2/conv/W'"]),
], ids=["missing", "left-over", "wrong-shape"])
def test_mismatch_stops_with_one_line(tmp_path, edit, expect):
    path = _h5_variant(tmp_path, edit)
    with pytest.raises(TransferError) as e:
        import_supernet(path, SupernetConfig(**CFG))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(path)
    for s in expect:
        assert s in msg, msg


def test_other_width_names_the_likely_cause():
    with pytest.raises(TransferError, match=r"width multiplier or channel divisor.*suggests width_mult 0.125"):
        import_supernet(H5, SupernetConfig(**dict(CFG, width_mult=0.25)))
