"""``python -m nnabla_nas_detofa export`` end to end on a tiny run folder, and every bad input as one line."""
import json
import os
import shutil
import subprocess
import sys
from collections import OrderedDict

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.space import SupernetConfig, space_from_spec
from test_cli_run import experiment

OFA = space_from_spec("ofa")
TOL = 1e-4


@pytest.fixture(scope="module")
def tiny_run(tiny_voc, tmp_path_factory):
    """A 1-epoch supernet run at 1/16 width, 64 px (with the trainer's own --save-nnp files)."""
    base = tmp_path_factory.mktemp("export_run")
    out = str(base / "run")
    exp = base / "exp.json"
    exp.write_text(json.dumps(experiment(tiny_voc, out, epochs=1, final_eval=False)))
    r = subprocess.run([sys.executable, "-m", "nnabla_nas_detofa", "run", "-f", str(exp), "--save-nnp"],
                       capture_output=True, text=True, cwd=str(base), timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for f in ("run.json", "experiment.json", "measurement_sets.json", "supernet.h5", "max.nnp"):
        assert os.path.isfile(os.path.join(out, f)), f
    return out


def write_archs(path, archs):
    with open(path, "w") as f:
        for a in archs:
            f.write(json.dumps({"arch": a.to_dict()}) + "\n")
    return str(path)


def export(argv, capsys):
    """(exit code, stdout report or None, stderr lines)."""
    code = main_tools(["export"] + argv)
    cap = capsys.readouterr()
    out = cap.out.strip().splitlines()
    return code, (json.loads(out[-1]) if code == 0 else None), cap.err.strip().splitlines()


def nnp_params(path):
    with nn.parameter_scope("", OrderedDict()):
        nn.load_parameters(path)
        return OrderedDict((k, v.d.copy()) for k, v in nn.get_parameters(grad_only=False).items())


def run_nnp(path, x, name="detofa"):
    from nnabla.utils import nnp_graph
    with nn.parameter_scope("", OrderedDict()):
        g = nnp_graph.NnpLoader(path).get_network(name, batch_size=x.shape[0])
        g.inputs["x"].d = x
        outs = [g.outputs[k] for k in ("heatmap", "wh", "reg")]
        nn.forward_all(outs)
        return [o.d.copy() for o in outs]


def test_export_reproduces_the_runs_own_calibrated_path(tiny_run, tmp_path, capsys):
    """The largest path exported from the run's files carries the parameters --save-nnp wrote in the run
    itself: the same extraction and the same BatchNorm calibration set (the run's stored one)."""
    arch = write_archs(tmp_path / "max.jsonl", [OFA.extreme(True)])
    out = str(tmp_path / "max.nnp")
    code, rep, err = export(["--arch", arch, "--weights", os.path.join(tiny_run, "supernet.h5"), "--format", "nnp",
                             "-o", out], capsys)
    assert code == 0, err
    assert rep["path"] == out and rep["weights_kind"].startswith("supernet") and rep["bn_recalibrated_on"] == 8
    assert rep["check"]["max_error"] <= TOL and rep["input_size"] == 64 and rep["bytes"] == os.path.getsize(out)
    assert "RGB" in rep["input"]["x"] and set(rep["outputs"]) == {"heatmap", "wh", "reg"}
    mine, runs = nnp_params(out), nnp_params(os.path.join(tiny_run, "max.nnp"))
    assert list(mine) == list(runs)
    for k in runs:
        assert np.allclose(mine[k], runs[k], rtol=1e-5, atol=1e-6), k
    # and the supernet's stored BN statistics are not what was exported (they were re-calibrated)
    from nnabla_nas_detofa.nets.detector import read_parameters
    stored = read_parameters(os.path.join(tiny_run, "supernet.h5"))["stem/conv3/bn/var"]
    assert not np.allclose(mine["stem/conv3/bn/var"], stored[:, :mine["stem/conv3/bn/var"].shape[1]])


def test_export_onnx_end_to_end(tiny_run, tmp_path, capsys):
    """As a user types it (a subprocess): one arch of a file of many, another input size and batch;
    the ONNX file gives the outputs of the .nnp export of the same arch."""
    import onnxruntime as ort   # the test extra installs it: a missing one fails here, never skips
    archs = [OFA.sample(__import__("random").Random(s)) for s in range(3)]
    arch_file = write_archs(tmp_path / "archs.jsonl", archs)
    onnx_out = str(tmp_path / "deploy" / "net.onnx")
    weights = os.path.join(tiny_run, "supernet.h5")
    r = subprocess.run([sys.executable, "-m", "nnabla_nas_detofa", "export", "--arch", arch_file, "--index", "1",
                        "--weights", weights, "--format", "onnx", "-o", onnx_out, "--input-size", "96",
                        "--batch-size", "2"], capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["opset"] == 13 and rep["input_size"] == 96 and rep["batch_size"] == 2
    assert rep["arch"] == archs[1].to_dict() and rep["check"]["max_error"] <= TOL
    nnp_out = str(tmp_path / "net.nnp")
    code, _, err = export(["--arch", arch_file, "--index", "1", "--weights", weights, "--format", "nnp", "-o", nnp_out,
                           "--input-size", "96", "--batch-size", "2"], capsys)
    assert code == 0, err
    x = np.random.default_rng(3).uniform(0, 255, (2, 3, 96, 96)).astype(np.float32)
    sess = ort.InferenceSession(onnx_out, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"] and sess.get_inputs()[0].shape == [2, 3, 96, 96]
    got = sess.run(["heatmap", "wh", "reg"], {"x": x})
    ref = run_nnp(nnp_out, x)
    assert got[0].shape == (2, 5, 24, 24) and got[1].shape == (2, 2, 24, 24) and got[2].shape == (2, 2, 24, 24)
    err = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got))
    assert err <= TOL, err
    props = {p.key: p.value for p in __import__("onnx").load(onnx_out).metadata_props}
    assert props["weights"] == os.path.abspath(weights) and json.loads(props["arch"]) == archs[1].to_dict()


def copy_run(tiny_run, dest, **experiment_changes):
    """A copy of the run's files (not its data or checkpoint) with changes to experiment.json."""
    os.makedirs(dest)
    for f in ("run.json", "measurement_sets.json", "supernet.h5"):
        shutil.copy(os.path.join(tiny_run, f), dest)
    conf = json.load(open(os.path.join(tiny_run, "experiment.json")))
    for path, value in experiment_changes.items():
        node = conf
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    json.dump(conf, open(os.path.join(dest, "experiment.json"), "w"))
    return str(dest)


def test_static_weights_need_no_calibration_data(tiny_run, tmp_path, capsys):
    """A static network's weight file is exported as it is: no BN re-calibration, so the run's data
    is not even read (here it is gone), while supernet weights of the same run need it."""
    from nnabla_nas_detofa.nets.static import StaticDetector
    run = copy_run(tiny_run, tmp_path / "run_without_data", **{"dataloader.detofa_voc.root": str(tmp_path / "gone")})
    arch = OFA.extreme(False)
    cfg = SupernetConfig.from_dict(json.load(open(os.path.join(tiny_run, "run.json")))["network"])
    static = StaticDetector(cfg, arch)
    static.load_parameters(os.path.join(tiny_run, "supernet.h5"))
    weights = str(tmp_path / "static.h5")
    static.save_weights(weights)
    arch_file = write_archs(tmp_path / "min.jsonl", [arch])
    out = str(tmp_path / "static.nnp")
    code, rep, err = export(["--arch", arch_file, "--weights", weights, "--run", run, "--format", "nnp", "-o", out],
                            capsys)
    assert code == 0, err
    assert rep["weights_kind"] == "static network" and rep["bn_recalibrated_on"] == 0
    assert rep["check"]["max_error"] == 0.0
    have, want = nnp_params(out), OrderedDict((k, p.d) for k, p in static.get_parameters().items())
    assert list(have) == list(want) and all(np.array_equal(have[k], want[k]) for k in want)
    # the supernet weights of the same (data-less) run: calibration needs the data, one line naming it
    code, _, err = export(["--arch", arch_file, "--weights", os.path.join(run, "supernet.h5"), "--format", "nnp",
                           "-o", str(tmp_path / "s.nnp")], capsys)
    assert code == 2 and len(err) == 1 and "gone" in err[0], err
    assert not os.path.exists(tmp_path / "s.nnp")


def test_existing_output_is_kept_unless_force(tiny_run, tmp_path, capsys):
    arch = write_archs(tmp_path / "a.jsonl", [OFA.extreme(False)])
    out = tmp_path / "mine.nnp"
    out.write_bytes(b"a user's file")
    argv = ["--arch", arch, "--weights", os.path.join(tiny_run, "supernet.h5"), "--format", "nnp", "-o", str(out)]
    code, _, err = export(argv, capsys)
    assert code == 2 and len(err) == 1 and "exists" in err[0] and "--force" in err[0]
    assert out.read_bytes() == b"a user's file"
    code, rep, err = export(argv + ["--force"], capsys)
    assert code == 0, err
    assert len(nnp_params(str(out))) > 0 and sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "mine.nnp"]


def _bad_cases(tiny_run, tmp):
    """(argv, needle) pairs; every one must stop with one line holding the needle, writing nothing."""
    w = os.path.join(tiny_run, "supernet.h5")
    one = write_archs(os.path.join(tmp, "one.jsonl"), [OFA.extreme(False)])
    many = write_archs(os.path.join(tmp, "many.jsonl"), [OFA.extreme(False), OFA.extreme(True), OFA.extreme(True)])
    bad_json = os.path.join(tmp, "bad.json")
    open(bad_json, "w").write('{"d": [0, 0, 0, 0, 0],')
    lonely = os.path.join(tmp, "lonely")
    os.makedirs(lonely)
    shutil.copy(w, lonely)
    narrow = copy_run(tiny_run, os.path.join(tmp, "ps1_run"), **{"hparams.space": "ps1"})
    garbage = os.path.join(tmp, "garbage.h5")
    open(garbage, "wb").write(b"not a weight file")
    folder = os.path.join(tmp, "a_folder.nnp")
    os.makedirs(folder)
    from nnabla_nas_detofa.nets.supernet import DetOFASupernet
    other = os.path.join(tmp, "other_supernet.h5")
    DetOFASupernet(num_classes=5, width_mult=0.125, divisor=1).save_weights(other)
    out = os.path.join(tmp, "out.nnp")
    base = ["--arch", one, "--weights", w, "--format", "nnp", "-o", out]

    def with_(**kw):
        argv = list(base)
        for k, v in kw.items():
            flag = "--" + k.replace("_", "-") if k != "o" else "-o"
            if flag in argv:
                argv[argv.index(flag) + 1] = v
            else:
                argv += [flag, v]
        return argv

    return [
        (with_(weights=os.path.join(lonely, "supernet.h5")), "not a run folder (no run.json or experiment.json)"),
        (with_(weights=os.path.join(lonely, "supernet.h5")), "--run"),
        (with_(run=os.path.join(tmp, "nowhere")), "no such run folder"),
        (with_(weights=os.path.join(narrow, "supernet.h5")), "outside the search space"),
        (with_(format="tflite"), "--format tflite"),
        (with_(o=folder), "is a folder"),
        (with_(format="onnx"), "--format onnx file must end with .onnx"),
        (with_(arch=many), "holds 3 archs; choose one with --index"),
        (with_(arch=many, index="3"), "--index 3"),
        (with_(arch=bad_json), "bad.json"),
        (with_(arch=os.path.join(tmp, "no_arch.json")), "no_arch.json"),
        (with_(weights=os.path.join(tmp, "none.h5")), "--weights"),
        (with_(weights=garbage, run=tiny_run), "cannot read parameters"),
        (with_(weights=other, run=tiny_run), "not a supernet of the run"),
        (with_(input_size="100"), "--input-size=100"),
        (with_(batch_size="0"), "--batch-size 0"),
    ]


def test_bad_inputs_stop_with_one_line(tiny_run, tmp_path, capsys):
    for argv, needle in _bad_cases(tiny_run, str(tmp_path)):
        before = sorted(os.listdir(tmp_path))
        code, _, err = export(argv, capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and needle in err[0], (argv, err)
        assert sorted(os.listdir(tmp_path)) == before, argv
        assert not os.path.exists(os.path.join(tmp_path, "out.nnp"))
