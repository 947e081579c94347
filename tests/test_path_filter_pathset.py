"""Path set files: JSON Lines read / write, errors with file and line."""
import json
import os

import pytest

from nnabla_nas_detofa.path_filter import PathSet, PathSetError, read_arch_lines
from nnabla_nas_detofa.space import get_space

A = {"d": [0, 1, 0, 2, 1], "e": [0.2] * 18, "w": [0, 1, 2, 0, 1, 2]}
B = {"d": [2, 2, 2, 2, 2], "e": [0.35] * 18, "w": [2] * 6}


def _write(tmp_path, lines, name="p.jsonl"):
    p = tmp_path / name
    p.write_text("".join(l + "\n" for l in lines))
    return str(p)


def test_roundtrip_keeps_extra_keys(tmp_path):
    ps = PathSet.from_lists([A, B], [1234.5, 2345.25], [0.5, 0.25], extra=[{"ap": 0.31, "bucket": 0}, {}])
    path = str(tmp_path / "s.jsonl")
    ps.write(path)
    lines = [json.loads(l) for l in open(path)]
    assert lines[0] == {"arch": A, "flops": 1234.5, "val_loss": 0.5, "ap": 0.31, "bucket": 0}
    back = PathSet.read(path)
    assert len(back) == 2
    assert back[0].arch.to_dict() == A and back[1].arch.to_dict() == B
    assert back.flops.tolist() == [1234.5, 2345.25] and back.val_loss.tolist() == [0.5, 0.25]
    assert back[0].extra == {"ap": 0.31, "bucket": 0}
    assert [r.arch for r in back.subset([1])] == [back[1].arch]
    assert len(back + back) == 4
    # no temporary file left behind
    assert os.listdir(tmp_path) == ["s.jsonl"]


def test_write_is_atomic_on_failure(tmp_path):
    path = str(tmp_path / "s.jsonl")
    PathSet.from_lists([A], [1.0], [0.5]).write(path)
    bad = PathSet.from_lists([A], [1.0], [0.5])
    bad.records[0].val_loss = float("nan")
    with pytest.raises(PathSetError, match="finite"):
        bad.write(path)
    assert PathSet.read(path).val_loss.tolist() == [0.5]  # old content intact
    assert os.listdir(tmp_path) == ["s.jsonl"]


def test_blank_lines_skipped(tmp_path):
    line = json.dumps({"arch": A, "flops": 10.0, "val_loss": 1.0})
    p = _write(tmp_path, ["", line, "   ", line])
    assert len(PathSet.read(p)) == 2


@pytest.mark.parametrize("bad,match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"arch": A, "flops": 10.0}), "missing key 'val_loss'"),
    (json.dumps({"flops": 10.0, "val_loss": 1.0}), "missing key 'arch'"),
    (json.dumps({"arch": A, "val_loss": 1.0}), "missing key 'flops'"),
    (json.dumps({"arch": dict(A, d=[0, 5, 0, 0, 0]), "flops": 10.0, "val_loss": 1.0}), r"\['d'\]\[1\]=5"),
    (json.dumps({"arch": dict(A, e=[0.3] * 18), "flops": 10.0, "val_loss": 1.0}), "expand ratio"),
    (json.dumps({"arch": {"d": A["d"], "e": A["e"]}, "flops": 10.0, "val_loss": 1.0}), "missing key"),
    ('{"arch": %s, "flops": 10.0, "val_loss": NaN}' % json.dumps(A), "finite"),
    ('{"arch": %s, "flops": 10.0, "val_loss": Infinity}' % json.dumps(A), "finite"),
    (json.dumps({"arch": A, "flops": 10.0, "val_loss": "0.5"}), "expected a number"),
    (json.dumps({"arch": A, "flops": -1.0, "val_loss": 0.5}), "positive"),
    (json.dumps({"arch": A, "flops": True, "val_loss": 0.5}), "expected a number"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, match):
    good = json.dumps({"arch": A, "flops": 10.0, "val_loss": 1.0})
    p = _write(tmp_path, [good, "", bad])
    with pytest.raises(PathSetError, match=match) as err:
        PathSet.read(p)
    assert str(err.value).startswith(f"{p}:3:")


def test_empty_file_and_space_check(tmp_path):
    with pytest.raises(PathSetError, match="no paths"):
        PathSet.read(_write(tmp_path, ["", ""]))
    p = _write(tmp_path, [json.dumps({"arch": A, "flops": 10.0, "val_loss": 1.0})], "x.jsonl")
    PathSet.read(p, space=get_space("ofa"))
    with pytest.raises(PathSetError, match=r"x.jsonl:1: .*outside the search space 'compofa'"):
        PathSet.read(p, space=get_space("compofa"))


def test_read_arch_lines(tmp_path):
    p = _write(tmp_path, [json.dumps({"arch": A, "flops": 3.5, "tag": "x"}), "", json.dumps(B),
                          json.dumps({"arch": B})])
    out = read_arch_lines(p)
    assert [where for where, *_ in out] == [f"{p}:1", f"{p}:3", f"{p}:4"]
    assert out[0][1]["tag"] == "x" and out[0][3] == 3.5
    assert out[1][2].to_dict() == B and out[1][3] is None and out[2][3] is None
    with pytest.raises(PathSetError, match=r":2: .*expected a number"):
        read_arch_lines(_write(tmp_path, [json.dumps(A), json.dumps({"arch": A, "flops": "x"})], "y.jsonl"))
