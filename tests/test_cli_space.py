"""`python -m nnabla_nas_detofa flops` and `sample`."""
import json

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.space import Arch, SupernetConfig, get_space, mflops

LARGEST = {"d": [2] * 5, "e": [0.35] * 18, "w": [2] * 6}


def run(capsys, argv):
    code = main_tools(argv)
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), out.err.strip().splitlines()


def test_flops_of_largest_backbone_at_224(tmp_path, capsys):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(LARGEST))
    code, out, _ = run(capsys, ["flops", "--arch", str(p), "--input-size", "224", "--part", "backbone"])
    assert code == 0 and out == ["7489.595904"]
    code, out, _ = run(capsys, ["flops", "--arch", str(p), "--input-size", "384"])
    assert float(out[0]) == mflops(Arch.from_dict(LARGEST), SupernetConfig(), 384)


def test_flops_of_jsonl_and_scaled_net(tmp_path, capsys):
    sp = get_space("ofa")
    archs = [sp.extreme(False), sp.extreme(True)]
    p = tmp_path / "a.jsonl"
    p.write_text("\n".join(json.dumps({"arch": a.to_dict()}) for a in archs) + "\n")
    code, out, _ = run(capsys, ["flops", "--arch", str(p), "--input-size", "128", "--width-mult", "0.25",
                                "--divisor", "1", "--num-classes", "5"])
    cfg = SupernetConfig(num_classes=5, width_mult=0.25, divisor=1)
    got = [json.loads(line) for line in out]
    assert [g["flops"] for g in got] == [mflops(a, cfg, 128) for a in archs]


def test_flops_errors_are_one_line(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({**LARGEST, "w": [3] * 6}))
    code, out, err = run(capsys, ["flops", "--arch", str(p)])
    assert code == 2 and len(err) == 1 and str(p) in err[0] and "['w'][0]=3" in err[0]
    code, _, err = run(capsys, ["flops", "--arch", str(tmp_path / "none.json")])
    assert code == 2 and len(err) == 1 and "none.json" in err[0]
    p.write_text(json.dumps(LARGEST))
    code, _, err = run(capsys, ["flops", "--arch", str(p), "--input-size", "100"])
    assert code == 2 and "multiple of 32" in err[0]


def test_sample_is_seeded_and_stays_in_the_space(capsys):
    code, out, _ = run(capsys, ["sample", "--space", "compofa", "-n", "20", "--seed", "3", "--input-size", "384"])
    assert code == 0 and len(out) == 20
    again = run(capsys, ["sample", "--space", "compofa", "-n", "20", "--seed", "3", "--input-size", "384"])[1]
    assert out == again
    sp = get_space("compofa")
    for line in out:
        obj = json.loads(line)
        a = Arch.from_dict(obj["arch"])
        assert sp.contains(a) and obj["flops"] == mflops(a, SupernetConfig(), 384)
    code, _, err = run(capsys, ["sample", "--space", "nope"])
    assert code == 2 and "nope" in err[0]
