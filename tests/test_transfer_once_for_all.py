"""once-for-all's OFA-ResNet50 supernet imported into ours reproduces once-for-all's own stage outputs.

The fixture (``tests/data/once_for_all``, or the folder named by ``DETOFA_OFA_FIXTURE``, same layout:
``cases.json``, ``reference.npz``, one or more ``*.pth`` checkpoints of the same network) was made
with once-for-all's ``OFAResNets``: random weights and BN statistics, the stage outputs of its
extracted sub-networks (``get_active_subnet(preserve_weight=True).eval()``) for fixed inputs. After
import, for every case, our supernet path and our extracted static network must give the same
stage outputs to 1e-4 relative in evaluation mode.
"""
import glob
import json
import os

import numpy as np
import pytest

from nnabla_nas_detofa.nets import DetOFASupernet, extract
from nnabla_nas_detofa.nets.detector import HEATMAP_BIAS, IMAGE_MEAN, IMAGE_STD
from nnabla_nas_detofa.space import SupernetConfig
from nnabla_nas_detofa.transfer import (TransferError, backbone_shapes, import_supernet, load_torch_checkpoint,
                                        ofa_name_map, sniff)

from conftest import REPO
from torch_format import write_legacy, write_zip
from transfer_helpers import TOLERANCE, raw_images, stage_errors, stage_outputs

FIXTURE = os.environ.get("DETOFA_OFA_FIXTURE") or os.path.join(REPO, "tests", "data", "once_for_all")
CASES = json.load(open(os.path.join(FIXTURE, "cases.json")))
CFG = dict(num_classes=3, width_mult=CASES["width_mult"], divisor=CASES["channel_divisible"],
           bn_eps=CASES.get("bn_eps", 1e-5))
CHECKPOINTS = sorted(glob.glob(os.path.join(FIXTURE, "*.pth")))
MAIN = next(p for p in CHECKPOINTS if sniff(p) == "torch-zip") if any(
    sniff(p) == "torch-zip" for p in CHECKPOINTS) else CHECKPOINTS[0]


@pytest.fixture(scope="module")
def reference():
    return np.load(os.path.join(FIXTURE, "reference.npz"))


@pytest.fixture(scope="module")
def imported():
    return import_supernet(MAIN, SupernetConfig(**CFG))


@pytest.fixture(scope="module")
def supernet():
    return DetOFASupernet(pretrained=MAIN, **CFG)


def test_every_checkpoint_file_gives_the_same_arrays(imported):
    """Both of torch's file formats and both of once-for-all's key layouts."""
    arrays, _ = imported
    kinds = set()
    for path in CHECKPOINTS:
        other, report = import_supernet(path, SupernetConfig(**CFG))
        assert list(other) == list(arrays)
        for k in arrays:
            assert np.array_equal(other[k], arrays[k]), (path, k)
        kinds.add(("zip" if "zip format" in report["format"] else "legacy",
                   "flat" if "flat names" in report["format"] else "module"))
    if not os.environ.get("DETOFA_OFA_FIXTURE"):
        assert kinds == {("zip", "module"), ("legacy", "flat")}


def test_report(imported):
    arrays, report = imported
    shapes = backbone_shapes(SupernetConfig(**CFG))
    assert report["loaded"] == len(shapes) == len(arrays) == 305
    assert {k: a.shape for k, a in arrays.items()} == shapes
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert [d.split(" ")[0] for d in report["dropped"]] == ["classifier.linear.linear.weight",
                                                             "classifier.linear.linear.bias"]
    assert report["unused_counters"] == 61 and report["note"] is None
    assert "neck" in report["not_imported"] and "heads" in report["not_imported"]


def test_every_tensor_mapped_as_is(imported):
    """Each of our parameters holds exactly the once-for-all tensor of its name map (BN vectors reshaped)."""
    arrays, _ = imported
    sd = load_torch_checkpoint(MAIN)["state_dict"]
    for ofa, ours in ofa_name_map().items():
        assert np.array_equal(arrays[ours].reshape(-1), sd[ofa].reshape(-1)), ofa


@pytest.mark.parametrize("case", [c["case"] for c in CASES["cases"]])
def test_stage_outputs_match_once_for_all(supernet, reference, case):
    c = next(c for c in CASES["cases"] if c["case"] == case)
    supernet.set_arch(c["arch"])
    x = raw_images(reference["x"])
    path_err = stage_errors(stage_outputs(supernet, x), reference, case)
    static_err = stage_errors(stage_outputs(extract(supernet), x), reference, case)
    assert [list(reference[f"case{case}_stage{k}"].shape) for k in range(1, 5)] == c["stage_shapes"]
    assert max(path_err) < TOLERANCE, path_err
    assert max(static_err) < TOLERANCE, static_err


def test_dropped_classifier_reproduces_the_logits(reference):
    """The reader's classifier tensors on the reference stage-4 output give once-for-all's logits
    (the stage outputs are the network's last features, the reader reads every tensor right)."""
    sd = load_torch_checkpoint(MAIN)["state_dict"]
    w, b = sd["classifier.linear.linear.weight"], sd["classifier.linear.linear.bias"]
    for c in CASES["cases"]:
        i = c["case"]
        f = reference[f"case{i}_stage4"].mean(axis=(2, 3))
        logits = f @ w[:, :f.shape[1]].T + b
        ref = reference[f"case{i}_logits"]
        assert np.abs(logits - ref).max() <= 1e-4 * np.abs(ref).max()


def test_network_starts_neck_and_heads_from_initialisation(supernet, imported):
    arrays, _ = imported
    params = supernet.get_parameters()
    for k, a in arrays.items():
        assert np.array_equal(params[k].d, a), k
    assert not any(k.startswith(("neck/", "hm/", "wh/", "reg/", "input_")) for k in arrays)
    assert np.allclose(params["hm/out/b"].d, HEATMAP_BIAS) and np.all(params["wh/out/b"].d == 0)
    assert np.all(params["neck/0/bn/gamma"].d == 1) and np.all(params["neck/0/bn/mean"].d == 0)
    assert np.allclose(params["input_mean"].d.reshape(-1), IMAGE_MEAN)
    assert np.allclose(params["input_std"].d.reshape(-1), IMAGE_STD)
    assert supernet.pretrained_report["loaded"] == 305


def _state_dict_variant(tmp_path, edit, writer=write_zip):
    sd = dict(load_torch_checkpoint(MAIN)["state_dict"])
    edit(sd)
    path = str(tmp_path / "variant.pth")
    writer(path, {"state_dict": sd})
    return path


@pytest.mark.parametrize("edit, expect", [
    (lambda sd: sd.pop("blocks.5.conv2.bn.bn.running_var"),
     ["'blocks.5.conv2.bn.bn.running_var'", "'stages/1/1/conv2/bn/var'", "is missing"]),
    (lambda sd: sd.__setitem__("blocks.18.conv1.conv.conv.weight", np.zeros((8, 8, 1, 1), np.float32)),
     ["left-over tensor 'blocks.18.conv1.conv.conv.weight' (8, 8, 1, 1)"]),
    (lambda sd: sd.__setitem__("blocks.2.conv3.conv.conv.weight",
                               np.ascontiguousarray(sd["blocks.2.conv3.conv.conv.weight"][:, :8])),
     ["'blocks.2.conv3.conv.conv.weight' has shape (64, 8, 1, 1)", "expects (64, 24, 1, 1)",
      "width multiplier or channel divisor"]),
    (lambda sd: sd.__setitem__("input_stem.0.bn.bn.weight", sd["input_stem.0.bn.bn.weight"].astype(np.int64)),
     ["'input_stem.0.bn.bn.weight' is int64"]),
], ids=["missing", "left-over", "wrong-shape", "not-float"])
def test_mismatch_stops_with_one_line(tmp_path, edit, expect):
    if os.environ.get("DETOFA_OFA_FIXTURE"):
        pytest.skip("the edits name tensors of the 1/4-width fixture")
    path = _state_dict_variant(tmp_path, edit)
    with pytest.raises(TransferError) as e:
        import_supernet(path, SupernetConfig(**CFG))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(path)
    for s in expect:
        assert s in msg, msg


def test_other_width_names_the_tensor_and_the_likely_cause():
    for cfg in (dict(CFG, width_mult=CFG["width_mult"] * 2), dict(CFG, divisor=1)):
        with pytest.raises(TransferError) as e:
            import_supernet(MAIN, SupernetConfig(**cfg))
        msg = str(e.value)
        assert "\n" not in msg and "has shape" in msg and "width multiplier or channel divisor" in msg
        assert f"suggests width_mult {CASES['width_mult']:g}" in msg


def test_half_precision_and_bare_state_dict(tmp_path, imported):
    """A checkpoint saved in float16, legacy format, holding the state dict itself."""
    arrays, _ = imported
    sd = {k: (v.astype(np.float16) if v.dtype == np.float32 else v)
          for k, v in load_torch_checkpoint(MAIN)["state_dict"].items()}
    path = str(tmp_path / "half")
    write_legacy(path, sd)
    got, report = import_supernet(path, SupernetConfig(**CFG))
    assert "bare state dict" in report["format"]
    k = "stages/2/0/conv2/conv/W"
    assert got[k].dtype == np.float32 and np.array_equal(got[k], arrays[k].astype(np.float16).astype(np.float32))
