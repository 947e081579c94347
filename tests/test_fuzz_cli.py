"""Fuzz: every numeric flag of every tool, and the files the tools read (arch files, path sets, path
filters), through ``python -m nnabla_nas_detofa`` (in-process ``main_tools``; a few subprocesses
check that what reaches a real terminal is one line).

A bad flag is refused by argparse before any work (one line naming the flag); a bad file stops
with one line naming the file (and item or line); ``make-synthetic-voc`` never writes into a
folder that holds anything else.
"""
import json
import os
import subprocess
import sys

import pytest
from fuzz_cases import DEEP, HUGE, INF, NAN, assert_one_line, byte_variants, call, json_text, snapshot

from nnabla_nas_detofa.cli.tools import main_tools
from nnabla_nas_detofa.data.synthetic import SYNTHETIC_MARKER, make_synthetic_voc
from nnabla_nas_detofa.path_filter import PathFilter, PathFilterConfig, SyntheticTask, default_vocabulary, \
    synthetic_pathset
from nnabla_nas_detofa.space import SupernetConfig, get_space, space_buckets

CFG, SIZE = SupernetConfig(width_mult=0.125, divisor=1), 64
ARCH = get_space("ofa").extreme(True).to_dict()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzzcli")
    (d / "arch.json").write_text(json.dumps(ARCH))
    synthetic_pathset(SyntheticTask(0), get_space("ofa"), CFG, SIZE, 4, seed=1).write(str(d / "paths.jsonl"))
    flt = PathFilter(PathFilterConfig(vocab=default_vocabulary(), buckets=space_buckets(get_space("ofa"), CFG, SIZE),
                                      supernet=CFG, input_size=SIZE, token_dim=8, bucket_dim=8, n_layers=1,
                                      n_heads=2, d_ff=8, d_fc=8))
    flt.save(str(d / "f.h5"))
    (d / "voc").mkdir()
    return d


BAD_NUMBERS = ["nan", "inf", "-inf", "-1", "1e999", "abc", "", "0x10", "1,5", "9" * 30]


def flag_cases(d):
    paths, arch = str(d / "paths.jsonl"), str(d / "arch.json")
    net = ["--num-classes", "--width-mult", "--divisor"]
    return [
        (["flops", "--arch", arch], ["--input-size"] + net),
        (["sample"], ["-n", "--seed", "--input-size"] + net),
        (["make-synthetic-voc", str(d / "never")], ["--num-train", "--num-val", "--image-size", "--seed",
                                                     "--max-objects", "--aspect-jitter", "--min-object-size",
                                                     "--max-object-size", "--workers"]),
        (["check-data", f"voc:{d / 'voc'}"], ["--workers"]),
        (["path-filter", "train", "--paths", paths, "-o", str(d / "never")],
         ["--epochs", "--seed", "--lr", "--batch-size", "--input-size"] + net),
        (["measure-latency", "--input-size", "64", "-o", str(d / "never")],
         ["--input-size", "--batch", "--warmup", "--repeats", "--group", "--validate", "--seed"] + net),
    ]


def test_every_numeric_flag_refuses_bad_numbers(files):
    before = snapshot(files)
    n = 0
    for prefix, flags in flag_cases(files):
        for fl in flags:
            for bad in BAD_NUMBERS:
                o = call(main_tools, prefix + [fl, bad])
                if o.rc == 0:        # a huge integer is a valid value of some flags (-n? no: bounded)
                    raise AssertionError(f"{prefix[0]} {fl} {bad!r}: accepted")
                assert_one_line(o, fl, what=f"{prefix[0]} {fl} {bad!r}")
                n += 1
    assert n > 250
    assert snapshot(files) == before and not os.path.exists(files / "never")


@pytest.mark.parametrize("argv, needle", [
    (["path-filter", "train", "--lr", "0"], "--lr"), (["path-filter", "train", "--batch-size", "1"], "--batch-size"),
    (["path-filter", "train", "--epochs", "-1"], "--epochs"), (["path-filter", "train", "--seed", "-1"], "--seed"),
    (["path-filter", "train", "--input-size", "100"], "--input-size"),
    (["path-filter", "train", "--input-size", "64", "--width-mult", "5"], "--width-mult"),
    (["path-filter", "train", "--input-size", "64", "--num-classes", "0"], "--num-classes"),
    (["path-filter", "train", "--ablation", "nope"], "--ablation"), (["path-filter", "nope"], "nope"),
    (["flops", "--input-size", "0"], "--input-size"), (["flops", "--input-size", "33"], "--input-size"),
    (["flops", "--divisor", "0"], "--divisor"), (["flops", "--part", "tail"], "--part"),
    (["sample", "--space", "nope"], "nope"), (["sample", "--mode", "x"], "--mode"), (["sample", "-n", "1e3"], "-n"),
    (["make-synthetic-voc", "X", "--image-size", "31"], "--image-size"),
    (["make-synthetic-voc", "X", "--aspect-jitter", "1"], "--aspect-jitter"),
    (["evaluate", "--dataset", "voc:x", "--detections", "d", "--metric", "map"], "--metric"),
    (["check-data", "yolo:x"], "yolo:x"), ([], "COMMAND"), (["nope"], "nope"),
])
def test_flag_values_out_of_range(files, argv, needle):
    paths = str(files / "paths.jsonl")
    if argv[:2] == ["path-filter", "train"]:
        argv = argv + ["--paths", paths, "-o", str(files / "never")]
    if argv[:1] == ["flops"]:
        argv = argv + ["--arch", str(files / "arch.json")]
    argv = [str(files / a) if a == "X" else a for a in argv]
    o = call(main_tools, argv)
    assert_one_line(o, needle, what=" ".join(argv))
    assert not os.path.exists(files / "never") and not os.path.exists(files / "X")


def _arch_variants():
    out = []
    for key, n in (("d", 5), ("e", 18), ("w", 6)):
        for bad in (NAN, INF, -INF, 1.5, "1", None, [], True, HUGE, -HUGE, 10 ** 400):
            a = json.loads(json.dumps(ARCH))
            a[key][n // 2] = bad
            out.append((f"{key}[{n // 2}]={bad!r}"[:40], json_text(a), key))   # 10 ** 400: no float holds it
        a = json.loads(json.dumps(ARCH))
        a[key] = a[key][:-1]
        out.append((f"{key} short", json_text(a), key))
    a = dict(ARCH, x=[1])
    out += [("extra key", json_text(a), "'x'"), ("deep", json_text([DEEP]), "nested too deeply"),
            ("empty list", b"[]", "holds no arch"), ("empty file", b"", "empty file"), ("blank", b"\n\n", "empty"),
            ("not utf-8", b'{"d": "\xff"}', "not UTF-8"), ("utf-16", json.dumps(ARCH).encode("utf-16"), "UTF-8"),
            ("number", b"5", "expected an object"), ("jsonl bad line", (json.dumps(ARCH) + "\n{\n").encode(), ":2"),
            ("dup key", b'{"d": [0,0,0,0,0], "d": [2,2,2,2,2]}', "appears twice")]
    return out


def test_arch_files(files, tmp_path):
    p = tmp_path / "a.json"
    for k, (what, raw, needle) in enumerate(_arch_variants()):
        p.write_bytes(raw)
        commands = [["flops", "--arch", str(p)]]
        if k % 4 == 0:          # the same reader: a sample is enough (each call loads the filter)
            commands.append(["path-filter", "score", "--archs", str(p), "--weights", str(files / "f.h5")])
        for argv in commands:
            assert_one_line(call(main_tools, argv), str(p), needle, what=f"{argv[0]}: {what}")
    good = json.dumps({"arch": ARCH, "flops": 10.0}).encode()
    for what, raw in byte_variants(good, 30, seed=2):
        p.write_bytes(raw)
        o = call(main_tools, ["flops", "--arch", str(p), "--input-size", "64"])
        assert o.rc in (0, 2), (what, o)
        if o.rc == 2:
            assert_one_line(o, str(p), what=what)
    assert_one_line(call(main_tools, ["flops", "--arch", str(tmp_path / "nope.json")]), "nope.json")
    assert_one_line(call(main_tools, ["flops", "--arch", str(tmp_path)]), str(tmp_path))


def test_path_sets(files, tmp_path):
    lines = (files / "paths.jsonl").read_text().splitlines()
    obj = json.loads(lines[1])
    p = tmp_path / "p.jsonl"
    cases = [(k, bad) for k in ("flops", "val_loss") for bad in (NAN, INF, "1", None, [], True, 10 ** 400)] + \
        [("flops", 0), ("flops", -1), ("flops", -HUGE), ("arch", {"d": [0]}), ("arch", [ARCH]), ("arch", None)]
    for key, bad in cases:
        o2 = dict(obj)
        o2[key] = bad
        if bad is None:
            del o2[key]
        p.write_text("\n".join([lines[0], json.dumps(o2)] + lines[2:]) + "\n")
        for argv in (["path-filter", "eval", "--paths", str(p), "--weights", str(files / "f.h5")],
                     ["path-filter", "train", "--paths", str(p), "-o", str(tmp_path / "out")]):
            assert_one_line(call(main_tools, argv), f"{p}:2", key, what=f"{argv[1]} {key}={bad!r}")
    assert not os.path.exists(tmp_path / "out")
    for raw, needle in ((b"", "no paths"), (b"\xff\n", "not UTF-8"), (b"[1]\n", "expected a JSON object"),
                        (json_text(DEEP) + b"\n", "nested too deeply"), (b'{"a": 1, "a": 2}\n', "appears twice")):
        p.write_bytes(raw)
        assert_one_line(call(main_tools, ["path-filter", "eval", "--paths", str(p), "--weights",
                                          str(files / "f.h5")]), str(p), needle, what=needle)
    good = ("\n".join(lines) + "\n").encode()
    for what, raw in byte_variants(good, 30, seed=4):
        p.write_bytes(raw)
        o = call(main_tools, ["path-filter", "eval", "--paths", str(p), "--weights", str(files / "f.h5")])
        assert o.rc in (0, 2), (what, o)
        if o.rc == 2:
            assert_one_line(o, str(p), what=what)


def test_path_filter_files(files, tmp_path):
    import shutil
    h5, js = tmp_path / "g.h5", tmp_path / "g.json"
    shutil.copy(files / "f.h5", h5)
    good = json.loads((files / "f.json").read_text())
    cases = [(k, bad) for k in ("token_dim", "n_layers", "n_heads", "d_ff", "input_size")
             for bad in (NAN, "8", -1, 0, HUGE, True, [])] + \
        [("vocab", "x"), ("vocab", [1, 2]), ("vocab", []), ("buckets", {"lo": 1, "hi": INF, "n": 5}),
         ("buckets", {"lo": 1, "hi": 2, "n": 10 ** 6}), ("buckets", None), ("budget", "yes"), ("pe_norm", "x"),
         ("supernet", {"width_mult": 10 ** 400}), ("supernet", {"nope": 1}), ("meta", [1]), ("extra", 1)]
    for key, bad in cases:
        c = dict(good, **{key: bad})
        js.write_bytes(json_text(c))
        o = call(main_tools, ["path-filter", "eval", "--paths", str(files / "paths.jsonl"), "--weights", str(h5)])
        assert_one_line(o, str(tmp_path / "g."), what=f"{key}={bad!r}")      # g.json, or g.h5 that it no longer fits
    c = dict(good, vocab=good["vocab"][:-1])
    js.write_bytes(json_text(c))
    assert_one_line(call(main_tools, ["path-filter", "eval", "--paths", str(files / "paths.jsonl"), "--weights",
                                      str(h5)]), "g.h5", "shape")
    js.write_bytes(json_text(good))
    for what, raw in byte_variants((files / "f.h5").read_bytes(), 12, seed=6)[:8]:
        h5.write_bytes(raw)
        o = call(main_tools, ["path-filter", "eval", "--paths", str(files / "paths.jsonl"), "--weights", str(h5)])
        assert o.rc in (0, 2), (what, o)
        if o.rc == 2:
            assert_one_line(o, "g.h5", what=what)
    for raw, needle in ((b"\xff", "not UTF-8"), (b"{", "invalid JSON"), (json_text(DEEP), "nested too deeply")):
        js.write_bytes(raw)
        assert_one_line(call(main_tools, ["path-filter", "eval", "--paths", str(files / "paths.jsonl"),
                                          "--weights", str(h5)]), "g.json", needle, what=needle)


def test_training_that_diverges_or_cannot_start(files, tmp_path, monkeypatch):
    import nnabla_nas_detofa.path_filter.train as train
    out = tmp_path / "out"
    nan_loss = train.pair_loss_grad

    def diverging(*a):
        loss, grad = nan_loss(*a)
        return loss * float("nan"), grad
    monkeypatch.setattr(train, "pair_loss_grad", diverging)
    o = call(main_tools, ["path-filter", "train", "--paths", str(files / "paths.jsonl"), "--epochs", "3",
                          "-o", str(out)])
    assert_one_line(o, "diverged at epoch 1", "lower lr")
    assert not out.exists()                 # the untrained filter is not saved
    monkeypatch.undo()
    (tmp_path / "afile").write_text("mine")
    o = call(main_tools, ["path-filter", "train", "--paths", str(files / "paths.jsonl"), "-o", str(tmp_path / "afile")])
    assert_one_line(o, "afile", "not a folder")
    assert (tmp_path / "afile").read_text() == "mine"


def test_make_synthetic_voc_writes_only_into_new_or_own_folders(tmp_path):
    small = ["--num-train", "2", "--num-val", "1", "--image-size", "32"]
    user = tmp_path / "user"
    user.mkdir()
    (user / "classes.txt").write_text("my classes\n")
    (user / "VOC2007").mkdir()
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".keep").write_text("")
    afile = tmp_path / "afile"
    afile.write_text("mine")
    before = snapshot(tmp_path)
    for target in (user, hidden, afile):
        for extra in ([], ["--overwrite"]):
            o = call(main_tools, ["make-synthetic-voc", str(target), *small, *extra])
            assert_one_line(o, str(target), what=f"{target.name} {extra}")
    assert snapshot(tmp_path) == before
    own = tmp_path / "own"
    assert call(main_tools, ["make-synthetic-voc", str(own), *small]).rc == 0
    assert (own / SYNTHETIC_MARKER).is_file()
    assert_one_line(call(main_tools, ["make-synthetic-voc", str(own), *small]), "--overwrite")
    assert call(main_tools, ["make-synthetic-voc", str(own), *small, "--num-train", "3", "--overwrite"]).rc == 0
    assert len((own / "VOCsynth" / "ImageSets" / "Main" / "train.txt").read_text().split()) == 3
    (own / "notes.txt").write_text("mine now")
    assert_one_line(call(main_tools, ["make-synthetic-voc", str(own), *small, "--overwrite"]), "notes.txt")
    assert (own / "notes.txt").read_text() == "mine now"
    os.remove(own / "notes.txt")
    os.remove(own / SYNTHETIC_MARKER)      # a data set without its marker is not known to be ours
    assert_one_line(call(main_tools, ["make-synthetic-voc", str(own), *small, "--overwrite"]), SYNTHETIC_MARKER)
    empty = tmp_path / "empty"
    empty.mkdir()
    make_synthetic_voc(str(empty), 2, 1, 32)
    assert sorted(os.listdir(empty)) == [SYNTHETIC_MARKER, "VOCsynth", "classes.txt"]
    assert not [n for n in os.listdir(tmp_path) if ".partial-" in n]      # no temporary folder left


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_a_real_terminal_sees_one_line(files, tmp_path):
    """What the console scripts print (no capture, no in-process shortcut): one line, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"args": {"algorithm": "x"},}')
    nul = tmp_path / "nul.json"
    nul.write_bytes(b"\xff\xfe{}")
    (tmp_path / "empty.json").write_text("[]")
    nnabla_nas = os.path.join(os.path.dirname(sys.executable), "nnabla_nas")
    tools = [sys.executable, "-m", "nnabla_nas_detofa"]
    for args, needle in (([nnabla_nas, "-f", str(bad)], "bad.json:1:"), ([nnabla_nas, "-f", str(nul)], "not UTF-8"),
                         ([nnabla_nas, "-f", str(bad), "-t", "double"], "-t/--type-config"),
                         (tools + ["flops", "--arch", str(tmp_path / "empty.json")], "holds no arch"),
                         (tools + ["path-filter", "train", "--paths", "x", "-o", "y", "--lr", "nan"], "--lr"),
                         (tools + ["check-data", f"voc:{tmp_path / 'none'}"], "no such directory")):
        r = _run(args, str(tmp_path))
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr
