"""End to end: `nnabla_nas -f` on CPU, errors as one clear line, kill + automatic resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from nnabla_nas_detofa.cli.main import main

BIN = os.path.join(os.path.dirname(sys.executable), "nnabla_nas")


def experiment(root, out, epochs=2, **hp):
    h = {"epoch": epochs, "batch_size_train": 4, "batch_size_valid": 4, "mini_batch_train": 4,
         "mini_batch_valid": 4, "print_frequency": 2, "valid_archs": ["min", "max"], "bn_calib_images": 8,
         "seed": 0}
    h.update(hp)
    return {
        "args": {"algorithm": "DetOFASupernetTrainer", "search": True, "context": "cpu", "output_path": out},
        "dataloader": {"detofa_voc": {"root": root, "train_split": "synth_train", "test_split": "synth_val",
                                      "input_size": 64, "num_classes": 5, "max_objs": 16, "num_workers": 1}},
        "network": {"detofa_resnet50": {"num_classes": 5, "width_mult": 0.0625, "divisor": 1}},
        "optimizer": {"train": {"name": "Adam", "lr": 1e-3}},
        "hparams": h,
    }


def write(tmp_path, conf, name="exp.json"):
    p = tmp_path / name
    p.write_text(json.dumps(conf))
    return str(p)


def run_cli(args, cwd):
    return subprocess.run([BIN] + args, capture_output=True, text=True, cwd=cwd, timeout=600)


def test_train_writes_outputs_and_loss_falls(tiny_voc, tmp_path):
    out = str(tmp_path / "run")
    exp = write(tmp_path, experiment(tiny_voc, out, epochs=3, lr_note=None) if False else
                experiment(tiny_voc, out, epochs=3))
    r = run_cli(["-f", exp, "-c", "cpu"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["epochs"] == 3 and len(summary["history"]) == 3
    losses = [h["train"]["loss/train"] for h in summary["history"]]
    assert losses[-1] < losses[0]
    for f in ("supernet.h5", "loss.png", "checkpoint/checkpoint.json", "checkpoint/weights.h5", "log.txt"):
        assert os.path.exists(os.path.join(out, f)), f
    lo, hi = summary["flops_range_mflops"]
    assert 0 < lo < hi


def test_save_nnp_exports_reference_paths(tiny_voc, tmp_path):
    import nnabla as nn
    import numpy as np
    from nnabla.utils import nnp_graph

    out = str(tmp_path / "nnp_run")
    exp = write(tmp_path, experiment(tiny_voc, out, epochs=1))
    r = run_cli(["-f", exp, "--save-nnp"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert set(summary["nnp"]) == {"min", "max"}
    with nn.parameter_scope("", {}):
        g = nnp_graph.NnpLoader(summary["nnp"]["max"]).get_network("detofa_max", batch_size=1)
        x = list(g.inputs.values())[0]
        assert tuple(x.shape) == (1, 3, 64, 64)
        x.d = np.random.default_rng(0).uniform(0, 255, x.shape)
        outs = [g.outputs[k] for k in ("heatmap", "wh", "reg")]
        nn.forward_all(outs)
        assert outs[0].shape == (1, 5, 16, 16) and np.isfinite(outs[0].d).all()


def test_flags_override_json(tiny_voc, tmp_path):
    conf = experiment(tiny_voc, str(tmp_path / "json_out"), epochs=1)
    exp = write(tmp_path, conf)
    flag_out = str(tmp_path / "flag_out")
    r = run_cli(["-f", exp, "-o", flag_out], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.exists(os.path.join(flag_out, "summary.json"))
    assert not os.path.exists(str(tmp_path / "json_out"))


def test_killed_run_resumes(tiny_voc, tmp_path):
    out = str(tmp_path / "resume")
    exp = write(tmp_path, experiment(tiny_voc, out, epochs=3, checkpoint_every=2))
    p = subprocess.Popen([BIN, "-f", exp], cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
    ckpt = os.path.join(out, "checkpoint", "checkpoint.json")
    deadline = time.time() + 300
    while not os.path.exists(ckpt) and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert os.path.exists(ckpt), "no checkpoint before the kill"
    first = json.load(open(ckpt))
    assert not os.path.exists(os.path.join(out, "summary.json"))
    r = run_cli(["-f", exp], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Resumed from" in r.stdout
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["epochs"] == 3
    # steps are not repeated: the resumed run continues the global step count
    assert summary["steps"] == 3 * (40 // 4)   # a run that labels no path trains on the whole split
    assert first["global_step"] >= 2
    # and it ends exactly where an uninterrupted run ends (same paths, batches, weights)
    ref_out = str(tmp_path / "uninterrupted")
    ref = write(tmp_path, experiment(tiny_voc, ref_out, epochs=3, checkpoint_every=2), "ref.json")
    r = run_cli(["-f", ref], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    expect = json.load(open(os.path.join(ref_out, "summary.json")))
    assert [h["valid_loss"] for h in summary["history"]] == [h["valid_loss"] for h in expect["history"]]
    assert summary["test"]["max"]["mAP"] == expect["test"]["max"]["mAP"]


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_bad_json_one_line(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text('{"args": {"algorithm": "x",}}')
    code, err = _err(capsys, ["-f", str(p)])
    assert code == 2 and len(err) == 1 and f"{p}:1:" in err[0] and "invalid JSON" in err[0]


def test_missing_file_one_line(tmp_path, capsys):
    code, err = _err(capsys, ["-f", str(tmp_path / "nope.json")])
    assert code == 2 and len(err) == 1 and "nope.json" in err[0]


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c.update(extra=1), "unknown top-level key(s) ['extra']"),
    (lambda c: c["hparams"].pop("epoch"), "missing key 'hparams.epoch'"),
    (lambda c: c["args"].update(algorithm="Nope"), "'args.algorithm'='Nope'"),
    (lambda c: c["network"]["detofa_resnet50"].update(width=2), "width"),
    (lambda c: c["dataloader"]["detofa_voc"].update(input_size=100), "input_size"),
    (lambda c: c["dataloader"]["detofa_voc"].update(colour=1), "colour"),
    (lambda c: c["optimizer"]["train"].update(name="Adamm"), "optimizer.train.name='Adamm'"),
    (lambda c: c["hparams"].update(space="nope"), "nope"),
    (lambda c: c["hparams"].update(batch_size_train=6), "mini_batch_train"),
])
def test_bad_keys_one_line(tiny_voc, tmp_path, capsys, mutate, needle):
    conf = experiment(tiny_voc, str(tmp_path / "o"), epochs=1)
    mutate(conf)
    p = write(tmp_path, conf)
    code, err = _err(capsys, ["-f", p])
    assert code == 2, err
    assert len(err) == 1 and needle in err[0] and p in err[0], err


def test_cudnn_without_extension_one_line(tiny_voc, tmp_path, capsys):
    try:
        import nnabla_ext.cuda  # noqa: F401
        pytest.skip("a CUDA extension is installed here")
    except Exception:
        pass
    p = write(tmp_path, experiment(tiny_voc, str(tmp_path / "o"), epochs=1))
    code, err = _err(capsys, ["-f", p, "-c", "cudnn"])
    assert code == 2 and len(err) == 1
    assert "nnabla-ext-cuda120" in err[0] and "-c cpu" in err[0]
