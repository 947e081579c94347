"""Latency lookup tables: lookup, file format, refusal of mismatched settings, the constraint,
and the measure-latency command at tiny scale (search/latency.py, nets/latency.py, cli)."""
import json
import random

import pytest

from nnabla_nas_detofa.search import (LatencyTable, LatencyTableError, latency_constraint, regularized_evolution)
from nnabla_nas_detofa.search.latency import entries_from_times
from nnabla_nas_detofa.space import SupernetConfig, get_space, make_space, path_layers, space_layers

CFG = SupernetConfig(num_classes=3, width_mult=0.0625, divisor=1)
SIZE = 64


def table_for(space, cfg=CFG, size=SIZE, seed=0, **kw):
    rng = random.Random(seed)
    times = {lay.key(): [rng.uniform(0.1, 2.0)] for lay in space_layers(space, cfg, size)}
    kw.setdefault("context", "cpu")
    kw.setdefault("batch_size", 1)
    return LatencyTable(entries_from_times(times), kw.pop("context"), kw.pop("batch_size"), size, cfg, **kw)


def test_lookup_is_the_sum_over_the_layers_written_out_by_hand():
    table = table_for(get_space("ofa"))
    a = get_space("ofa").extreme(False)   # stem depth 0, depths 2/2/4/2, widths 0.65, expand 0.2
    sm, so = CFG.stem_mid_list()[0], CFG.stem_out_list()[0]
    outs = [CFG.stage_out_list(s)[0] for s in range(4)]
    keys = [f"stem_conv1-input:64x64x3-output:32x32x{sm}", f"stem_conv3-input:32x32x{sm}-output:16x16x{so}"]
    size, cin = 16, so
    for s, (n, stride) in enumerate(zip((2, 2, 4, 2), (1, 2, 2, 2))):
        c = outs[s]
        mid = CFG.mid_channels(c, 0.2)
        out = size // stride
        keys.append(f"bottleneck-input:{size}x{size}x{cin}-output:{out}x{out}x{c}-mid:{mid}-stride:{stride}"
                    f"-shortcut:conv")
        same = f"bottleneck-input:{out}x{out}x{c}-output:{out}x{out}x{c}-mid:{mid}-stride:1-shortcut:identity"
        keys += [same] * (n - 1)
        size, cin = out, c
    neck = CFG.neck()
    keys += [f"deconv-input:2x2x{cin}-output:4x4x{neck[0]}", f"deconv-input:4x4x{neck[0]}-output:8x8x{neck[1]}",
             f"deconv-input:8x8x{neck[1]}-output:16x16x{neck[2]}",
             f"heads-input:16x16x{neck[2]}-output:16x16x3-mid:{CFG.head()}"]
    assert [x.key() for x in path_layers(a, CFG, SIZE)] == keys
    assert table.predict(a) == pytest.approx(sum(table.layers[k]["ms"] for k in keys), rel=1e-12)
    fast = table.fast_predictor()
    for b in [get_space("ofa").sample(random.Random(i)) for i in range(30)]:
        assert fast(b) == pytest.approx(table.predict(b), rel=1e-12)
    assert table.predict(a, "backbone") + table.predict(a, "head") == pytest.approx(table.predict(a), rel=1e-12)


def test_table_round_trip(tmp_path):
    table = table_for(get_space("compofa"), device="Some CPU", nnabla_version="1.39.0", warmup=2, repeats=5,
                      clock="process", validation={"networks": 0})
    path = str(tmp_path / "t.json")
    table.save(path)
    back = LatencyTable.load(path)
    assert back == table and back.source == path
    obj = json.loads(open(path).read())
    assert obj["format"] == "nnabla_nas_detofa.latency_table" and obj["version"] == 1
    assert obj["settings"]["supernet"]["width_mult"] == 0.0625 and obj["settings"]["clock"] == "process"
    a = get_space("compofa").sample(random.Random(1))
    assert back.predict(a) == table.predict(a)


@pytest.mark.parametrize("edit, match", [
    (lambda o: o.update(format="x"), "not a latency table"),
    (lambda o: o.update(version=7), "version 7 not supported"),
    (lambda o: o["settings"].pop("input_size"), r"missing key\(s\) \['input_size'\]"),
    (lambda o: o["settings"].update(input_size=100), "input_size.*multiple of 32"),
    (lambda o: o["settings"]["supernet"].update(width=1), r"unknown key\(s\) \['width'\]"),
    (lambda o: o["settings"].update(clock="sundial"), "clock"),
    (lambda o: next(iter(o["layers"].values())).update(ms=-1), r"\['ms'\]=-1"),
    (lambda o: next(iter(o["layers"].values())).pop("ms"), "expected an object with 'ms'"),
    (lambda o: o.update(layers={}), "non-empty"),
])
def test_bad_table_files_are_refused_naming_the_key(tmp_path, edit, match):
    obj = table_for(get_space("ps1")).to_dict()
    edit(obj)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(LatencyTableError, match=match) as err:
        LatencyTable.load(str(path))
    assert str(path) in str(err.value)
    path.write_text("{not json")
    with pytest.raises(LatencyTableError, match="invalid JSON"):
        LatencyTable.load(str(path))


def test_mismatched_settings_are_refused():
    table = table_for(get_space("ofa"))
    table.check(cfg=CFG, input_size=SIZE, batch_size=1, context="cpu")
    with pytest.raises(LatencyTableError, match=r"width_mult 0.125 \(table: 0.0625\)"):
        table.check(cfg=SupernetConfig(num_classes=3, width_mult=0.125, divisor=1))
    with pytest.raises(LatencyTableError, match="input_size 64, not 128"):
        table.check(input_size=128)
    with pytest.raises(LatencyTableError, match="batch_size 1, not 8"):
        latency_constraint(5.0, table, batch_size=8)
    with pytest.raises(LatencyTableError, match="context 'cpu', not 'cudnn'"):
        latency_constraint(5.0, table, context="cudnn")


def test_stem_layers_are_built_with_the_configs_activation():
    from nnabla_nas_detofa.nets.latency import layer_graph
    for act, want in (("relu", "ReLU"), ("relu6", "ReLU6")):
        cfg = SupernetConfig(num_classes=3, width_mult=0.0625, divisor=1, stem_activation=act)
        for lay in path_layers(get_space("ofa").extreme(True), cfg, SIZE)[:3]:
            kinds = []
            layer_graph(lay, cfg, 1)[1].visit(lambda f: kinds.append(f.info.type_name))
            assert want in kinds and ({"ReLU", "ReLU6"} - {want}).isdisjoint(kinds), (lay.kind, kinds)
    table = table_for(get_space("ps1"))
    with pytest.raises(LatencyTableError, match="stem_activation 'relu6' \\(table: 'relu'\\)"):
        table.check(cfg=SupernetConfig(num_classes=3, width_mult=0.0625, divisor=1, stem_activation="relu6"))


def test_latency_constraint_in_a_search_and_a_table_of_another_space():
    space = get_space("ofa")
    table = table_for(space)
    lo, hi = table.predict(space.extreme(False)), table.predict(space.extreme(True))
    c = latency_constraint(lo + 0.3 * (hi - lo), table, cfg=CFG, input_size=SIZE)
    fit = lambda archs: [table.predict(a) for a in archs]  # noqa: E731  (slowest feasible = best)
    res = regularized_evolution(space, fit, [c], population_size=20, sample_size=5, generations=4, seed=0)
    assert res.metrics["latency"] == pytest.approx(table.predict(res.best_arch)) and res.metrics["latency"] <= c.limit
    narrow = table_for(make_space(expands=(0.35,)))
    assert narrow.missing_layers(make_space(expands=(0.35,))) == []
    assert narrow.missing_layers(space)
    with pytest.raises(LatencyTableError, match="no entry for layer bottleneck-input"):
        narrow.predict(space.extreme(False))
    with pytest.raises(LatencyTableError, match="no value for layer bottleneck-input"):
        latency_constraint(1.0, narrow).value(space.extreme(False))


def test_measure_latency_cli_at_tiny_scale(tmp_path, capsys):
    from nnabla_nas_detofa.cli.tools import main_tools
    out = str(tmp_path / "table.json")
    rc = main_tools(["measure-latency", "--input-size", "64", "--batch", "1", "-c", "cpu", "--width-mult", "0.0625",
                     "--divisor", "1", "--num-classes", "3", "--space", "ps1", "--warmup", "1", "--repeats", "3",
                     "--validate", "2", "-o", out])
    assert rc == 0
    text = capsys.readouterr()
    assert "validation on 2 whole networks" in text.out and "[" in text.err   # progress lines
    table = LatencyTable.load(out)
    assert table.context == "cpu" and table.clock == "process" and table.repeats == 3 and table.batch_size == 1
    assert table.supernet == CFG and table.input_size == 64
    ps1 = get_space("ps1")
    assert table.missing_layers(ps1) == [] and len(table.layers) == len(space_layers(ps1, CFG, SIZE))
    assert all(e["n"] == 3 and e["ms"] > 0 for e in table.layers.values())
    val = table.validation
    assert val["networks"] == 2 and len(val["rows"]) == 2
    for row in val["rows"]:
        assert row["measured_ms"] > 0 and row["predicted_ms"] == pytest.approx(table.predict(row["arch"]))
        assert row["relative_error"] == pytest.approx((row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"])
    assert val["max_abs_relative_error"] == max(abs(r["relative_error"]) for r in val["rows"])


def test_measure_latency_cli_errors(tmp_path, capsys):
    from nnabla_nas_detofa.cli.tools import main_tools
    out = str(tmp_path / "t.json")
    try:
        import nnabla_ext.cuda  # noqa: F401
        has_cuda = True
    except Exception:
        has_cuda = False
    if not has_cuda:
        assert main_tools(["measure-latency", "--input-size", "64", "-c", "cudnn", "-o", out]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "context 'cudnn' needs a working NNabla CUDA extension" in err
    assert main_tools(["measure-latency", "--input-size", "100", "-o", out]) == 2
    assert "--input-size=100" in capsys.readouterr().err
    assert main_tools(["measure-latency", "--input-size", "64", "--repeats", "0", "-o", out]) == 2
    assert "argument --repeats: '0'" in capsys.readouterr().err
