"""The restricted torch-checkpoint reader: both file formats, storage types, strided views, and
refusal of every global outside a tensor checkpoint (nothing in a file can run code)."""
import os
import pickle

import numpy as np
import pytest

from nnabla_nas_detofa.transfer import CheckpointError, load_torch_checkpoint
from nnabla_nas_detofa.transfer.torch_reader import SAFE_GLOBALS

from conftest import REPO
from torch_format import Raw, View, op_global, op_str, op_tuple, write_legacy, write_zip

OFA = os.path.join(REPO, "tests", "data", "once_for_all")


def test_real_checkpoints_zip_and_legacy():
    """The torch-written fixture files (zip + module names, legacy + flat names) hold the same tensors."""
    a = load_torch_checkpoint(os.path.join(OFA, "ofa_supernet_resnet50_w0.25.pth"))
    b = load_torch_checkpoint(os.path.join(OFA, "ofa_supernet_resnet50_w0.25_flat_legacy.pth"))
    assert a["epoch"] == 0 and set(b) == {"state_dict"}
    sa, sb = a["state_dict"], b["state_dict"]
    assert len(sa) == len(sb) == 368
    for (ka, va), (kb, vb) in zip(sa.items(), sb.items()):
        assert ka.replace("conv.conv.", "conv.").replace("bn.bn.", "bn.").replace(".linear.linear.", ".linear.") == kb
        assert va.dtype == vb.dtype and va.shape == vb.shape and np.array_equal(va, vb)
    w = sa["input_stem.0.conv.conv.weight"]
    assert w.dtype == np.float32 and w.shape == (8, 3, 3, 3) and w.flags.c_contiguous and np.isfinite(w).all()
    n = sa["input_stem.0.bn.bn.num_batches_tracked"]
    assert n.dtype == np.int64 and n.shape == ()
    assert sa["blocks.0.conv1.bn.bn.running_var"].min() > 0


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
def test_storage_types_views_and_nesting(tmp_path, writer):
    rng = np.random.RandomState(0)
    base = rng.normal(size=24).astype(np.float32)
    obj = {"state_dict": {
        "half": rng.normal(size=(2, 3)).astype(np.float16),
        "double": rng.normal(size=(4,)),
        "long": np.arange(5, dtype=np.int64) - 2,
        "int": np.arange(3, dtype=np.int32),
        "byte": np.arange(4, dtype=np.uint8),
        "bool": np.array([True, False]),
        "scalar": np.array(7, np.int64),
        "empty": np.zeros((0, 3), np.float32),
        # two tensors over one storage: a transposed view and an offset slice
        "t": View("s", base, 0, (4, 6), (1, 4)),
        "tail": View("s", base, 10, (2, 3), (3, 1)),
        # bfloat16: the top 16 bits of float32 (widened back to float32)
        "bf16": View("b", (np.array([1.0, -2.5, 3.140625], np.float32).view(np.uint32) >> 16).astype(np.uint16),
                     0, (3,), (1,), storage_name="BFloat16Storage"),
    }, "epoch": 3, "nested": {"a": {"b": "c"}}}
    path = str(tmp_path / "ck.pth")
    writer(path, obj)
    got = load_torch_checkpoint(path)
    sd = got["state_dict"]
    for k in ("half", "double", "long", "int", "byte", "bool", "scalar", "empty"):
        assert sd[k].dtype == obj["state_dict"][k].dtype and sd[k].shape == obj["state_dict"][k].shape, k
        assert np.array_equal(sd[k], obj["state_dict"][k]), k
    assert np.array_equal(sd["t"], base.reshape(6, 4).T) and sd["t"].flags.c_contiguous
    assert np.array_equal(sd["tail"], base[10:16].reshape(2, 3))
    assert sd["bf16"].dtype == np.float32 and sd["bf16"].tolist() == [1.0, -2.5, 3.140625]
    assert got["epoch"] == 3 and got["nested"] == {"a": {"b": "c"}}


def _evil(module, name, marker):
    return Raw(op_global(module, name) + op_tuple([op_str(f"touch {marker}")]) + b"R")


@pytest.mark.parametrize("writer", [write_zip, write_legacy], ids=["zip", "legacy"])
@pytest.mark.parametrize("target", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                    ("subprocess", "call"), ("torch.nn.modules.conv", "Conv2d")])
def test_refuses_any_other_global(tmp_path, writer, target):
    marker = tmp_path / "ran"
    path = str(tmp_path / "evil.pth")
    writer(path, {"state_dict": {"w": np.ones(2, np.float32), "x": _evil(*target, marker)}})
    with pytest.raises(CheckpointError) as e:
        load_torch_checkpoint(path)
    msg = str(e.value)
    assert f"'{target[0]}.{target[1]}'" in msg and path in msg and "\n" not in msg and "run code" in msg
    assert not marker.exists()


def test_refuses_a_plain_malicious_pickle(tmp_path):
    """A pickle made by Python's own pickler (STACK_GLOBAL, protocol 4) for os.system, as a legacy
    checkpoint body and as a zip's data.pkl."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    body = pickle.dumps({"state_dict": Evil()}, protocol=4)
    legacy = tmp_path / "legacy.pth"
    with open(legacy, "wb") as f:
        for head in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
            f.write(pickle.dumps(head, protocol=2))
        f.write(body)
    import zipfile
    zpath = tmp_path / "zip.pth"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("archive/data.pkl", body)
    for p in (legacy, zpath):
        with pytest.raises(CheckpointError, match=r"refused to load the global '(os|posix)\.system'"):
            load_torch_checkpoint(str(p))
    # the header pickles of the legacy format resolve no global either
    bad_head = tmp_path / "head.pth"
    bad_head.write_bytes(body)
    with pytest.raises(CheckpointError, match="system"):
        load_torch_checkpoint(str(bad_head))
    assert not marker.exists()


def test_safe_globals_are_only_tensor_rebuilding():
    assert all(g.startswith(("torch.", "collections.OrderedDict")) for g in SAFE_GLOBALS)
    assert "torch._utils._rebuild_tensor_v2" in SAFE_GLOBALS and "torch.FloatStorage" in SAFE_GLOBALS


def test_not_a_checkpoint(tmp_path):
    for name, data in [("text.pth", b"hello world"), ("empty.pth", b""), ("pickle.pth", pickle.dumps([1, 2], 2))]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError) as e:
            load_torch_checkpoint(str(p))
        assert str(p) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_torch_checkpoint(str(tmp_path / "missing.pth"))
    # truncated legacy file: storages missing
    full = tmp_path / "full.pth"
    write_legacy(str(full), {"state_dict": {"w": np.ones(100, np.float32)}})
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match="truncated"):
        load_torch_checkpoint(str(cut))
    # a zip with no data.pkl (e.g. an .nnp)
    import zipfile
    z = tmp_path / "net.nnp"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("network.nntxt", "x")
    with pytest.raises(CheckpointError, match="data.pkl"):
        load_torch_checkpoint(str(z))


def test_reading_a_checkpoint_loads_nothing_heavy():
    """The reader and the once-for-all import are numpy + standard library (no torch, no nnabla)."""
    import subprocess
    import sys
    heavy = ("torch", "nnabla", "nnabla_nas", "nnabla_ext", "hydra", "h5py", "cv2")
    code = ("import sys; from nnabla_nas_detofa.space import SupernetConfig;"
            "from nnabla_nas_detofa.transfer import import_supernet;"
            f"a, r = import_supernet({os.path.join(OFA, 'ofa_supernet_resnet50_w0.25.pth')!r}, "
            "SupernetConfig(width_mult=0.25)); assert r['loaded'] == 305;"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
