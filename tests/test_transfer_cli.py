"""``import-weights``, the ``pretrained`` network key (supernet, TrainNet, launcher) and the
paper-setting examples that start from once-for-all's ImageNet supernet."""
import copy
import json
import os

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.nets import DetOFASupernet, detofa_resnet50
from nnabla_nas_detofa.runners.launch import ExperimentError, build_network, check_network_files
from nnabla_nas_detofa.space import ConfigError, SupernetConfig, get_space
from nnabla_nas_detofa.transfer import BACKBONE_MARKER, OFA_DOWNLOAD, TransferError, import_supernet
from nnabla_nas_detofa.transfer.importer import read_h5_parameters

from conftest import REPO

OFA = os.path.join(REPO, "tests", "data", "once_for_all", "ofa_supernet_resnet50_w0.25.pth")
NAS = os.path.join(REPO, "tests", "data", "nnabla_nas_ofa_resnet50", "ofa_resnet50_w0.125.h5")
CFG = dict(num_classes=3, width_mult=0.25, divisor=8)


def run(capsys, argv):
    code = main_tools(argv)
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip().splitlines()


@pytest.fixture(scope="module")
def backbone_h5(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("imported") / "supernet_init.h5")
    assert main_tools(["import-weights", OFA, "-o", out, "--width-mult", "0.25", "--divisor", "8"]) == 0
    return out


def test_import_weights_writes_the_backbone(tmp_path, capsys):
    out = str(tmp_path / "init.h5")
    code, lines, _ = run(capsys, ["import-weights", OFA, "-o", out, "--width-mult", "0.25"])
    assert code == 0
    text = "\n".join(lines)
    assert "loaded 305 tensors" in text and "dropped: classifier.linear.linear.weight (10, 512)" in text
    assert "neck" in text and '"pretrained": "' + out in text
    assert os.listdir(tmp_path) == ["init.h5"]  # written atomically, nothing else left
    arrays, _ = import_supernet(OFA, SupernetConfig(**CFG))
    params = read_h5_parameters(out)
    assert list(params) == list(arrays) + [BACKBONE_MARKER]
    for k, a in arrays.items():
        assert np.array_equal(params[k], a), k
    # the NNablaNAS source: the suggestion names its ReLU6 stem
    code, lines, _ = run(capsys, ["import-weights", NAS, "-o", str(tmp_path / "nas.h5"), "--width-mult", "0.125"])
    assert code == 0 and '"stem_activation": "relu6"' in lines[-1]


@pytest.mark.parametrize("argv, expect", [
    ([OFA, "-o", "OUT/x.h5"], "width multiplier or channel divisor"),
    ([OFA, "-o", "OUT/x.pth", "--width-mult", "0.25"], "must be an .h5 file"),
    (["missing.pth", "-o", "OUT/x.h5"], "missing.pth: cannot read"),
    ([os.path.join(REPO, "README.md"), "-o", "OUT/x.h5"], "not a pretrained supernet"),
], ids=["width", "suffix", "missing", "not-a-checkpoint"])
def test_import_weights_errors_are_one_line(tmp_path, capsys, argv, expect):
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, ["import-weights"] + argv)
    assert code == 2 and out == [] and len(err) == 1 and err[0].startswith("error: ") and expect in err[0]
    assert os.listdir(tmp_path) == []


def test_pretrained_from_import_weights_file(backbone_h5):
    a = DetOFASupernet(pretrained=OFA, **CFG)
    b = DetOFASupernet(pretrained=backbone_h5, **CFG)
    assert "import-weights" in b.pretrained_report["format"] and b.pretrained_report["loaded"] == 305
    pa, pb = a.get_parameters(), b.get_parameters()
    for k in import_supernet(OFA, SupernetConfig(**CFG))[0]:
        assert np.array_equal(pa[k].d, pb[k].d), k
    with pytest.raises(TransferError, match=r"imported for width_mult=0.25.*--width-mult 0.5"):
        DetOFASupernet(pretrained=backbone_h5, **dict(CFG, width_mult=0.5))


def test_weights_refuse_a_backbone_file(backbone_h5):
    for make in (lambda: DetOFASupernet(weights=backbone_h5, **CFG),
                 lambda: detofa_resnet50.TrainNet(weights=backbone_h5, **CFG)):
        with pytest.raises(ConfigError, match="give it as 'pretrained', not as 'weights'"):
            make()


def test_pretrained_refuses_a_detofa_weight_file(tmp_path):
    path = str(tmp_path / "supernet.h5")
    DetOFASupernet(num_classes=2, width_mult=0.0625, divisor=1).save_weights(path)
    with pytest.raises(TransferError, match="give it as 'weights'"):
        DetOFASupernet(pretrained=path, **CFG)


def test_weights_and_pretrained_together_refused(backbone_h5):
    for make in (DetOFASupernet, detofa_resnet50.TrainNet):
        with pytest.raises(ConfigError, match="give one of them"):
            make(weights=backbone_h5, pretrained=OFA, **CFG)


def test_trainnet_takes_the_leading_blocks():
    arrays, _ = import_supernet(OFA, SupernetConfig(**CFG))
    arch = get_space("ofa").extreme(False)   # smallest path, stem residual unit skipped
    net = detofa_resnet50.TrainNet(arch=arch.to_dict(), pretrained=OFA, **CFG)
    params = net.get_parameters()
    assert "stem/res/conv/W" not in params and net.pretrained_report["network_tensors"] < 305
    for k, p in params.items():
        if k in arrays:
            assert np.array_equal(p.d, arrays[k][tuple(slice(0, s) for s in p.shape)]), k


def test_call_backbone_stages():
    net = DetOFASupernet(num_classes=2, width_mult=0.0625, divisor=1)
    net.set_arch(get_space("ofa").extreme(False))
    net.apply(training=False)
    x = nn.Variable((1, 3, 64, 64))
    x.d = np.random.RandomState(0).uniform(0, 255, x.shape)
    stages = net.call_backbone(x, return_stages=True)
    last = net.call_backbone(x)
    nn.forward_all(stages + [last])
    assert [s.shape[2] for s in stages] == [16, 8, 4, 2]
    assert np.array_equal(stages[-1].d, last.d)


def test_stem_activation_setting():
    assert "stem_activation" not in SupernetConfig().to_dict()   # runs recorded before it read the same
    assert SupernetConfig(stem_activation="relu6").to_dict()["stem_activation"] == "relu6"
    assert SupernetConfig.from_dict(SupernetConfig(stem_activation="relu6").to_dict()).stem_activation == "relu6"
    with pytest.raises(ConfigError, match="stem_activation='gelu'"):
        SupernetConfig(stem_activation="gelu")


def _example(name):
    path = os.path.join(REPO, "examples", name)
    with open(path) as f:
        return json.load(f), path


@pytest.mark.parametrize("name", ["voc_ofa_uniform.json", "coco_ofa_uniform.json"])
def test_paper_examples_start_from_once_for_all(tmp_path, monkeypatch, name):
    conf, path = _example(name)
    attrs = conf["network"]["detofa_resnet50"]
    assert attrs["pretrained"] == "weights/ofa_supernet_resnet50" and OFA_DOWNLOAD in conf["comment"]
    monkeypatch.chdir(tmp_path)            # no weights/ folder here
    with pytest.raises(ExperimentError) as e:
        check_network_files(conf, path)
    msg = str(e.value)
    assert "\n" not in msg and "pretrained" in msg and OFA_DOWNLOAD in msg and '"pretrained": null' in msg
    scratch = copy.deepcopy(conf)
    scratch["network"]["detofa_resnet50"]["pretrained"] = None
    check_network_files(scratch, path)     # from scratch, explicitly
    os.makedirs("weights")
    with open("weights/ofa_supernet_resnet50", "w") as f:
        f.write("<html>not found</html>")  # e.g. a failed download
    with pytest.raises(ExperimentError, match="not a pretrained supernet"):
        check_network_files(conf, path)
    both = copy.deepcopy(conf)
    both["network"]["detofa_resnet50"]["weights"] = "weights/ofa_supernet_resnet50"
    with pytest.raises(ExperimentError, match="give one of them"):
        check_network_files(both, path)


def test_launcher_builds_the_supernet_from_pretrained():
    """The network entry goes through NNablaNAS's lookup (``contrib.detofa_resnet50.SearchNet``)."""
    conf = {"network": {"detofa_resnet50": dict(CFG, space="ofa", pretrained=OFA)}}
    check_network_files(conf, "exp.json")
    net = build_network(conf, True, "exp.json")
    assert isinstance(net, DetOFASupernet) and net.pretrained_report["loaded"] == 305
