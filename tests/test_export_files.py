"""Exported files (.nnp in NnpLoader, ONNX in onnxruntime) reproduce the supernet path they come from.

The supernet is tiny (1/16 width, 64 px) with every parameter random (weights, BatchNorm affine
and statistics, heads), so all three outputs are of order 1 and a wrong layer shows. Each file is
compared with the supernet itself running the path after BatchNorm re-calibration, by code of the
test's own (NnpLoader / onnxruntime called here, not through the package's check).

A random deep BatchNorm network is chaotic (a 1-ulp change of the input moves the outputs of the
largest path by ~3e-4 when every BN gain is of order 1), which would hide a conversion error in
float32 noise: as in a trained ResNet, the last BatchNorm of each residual branch has a small
scale (0.1-0.3), and then a 1-ulp input change moves the outputs by ~2e-5 at most, so 1e-4 is a
bound a wrong layer cannot meet (a wrong padding, pooling or epsilon moves them by ~1e-1).
"""
from collections import OrderedDict

import nnabla as nn
import numpy as np
import pytest

from nnabla_nas_detofa.evaluation.path_eval import PathEvaluator
from nnabla_nas_detofa.export import ExportError, export_path
from nnabla_nas_detofa.export import path as export_path_module
from nnabla_nas_detofa.nets.static import extract
from nnabla_nas_detofa.nets.supernet import DetOFASupernet
from nnabla_nas_detofa.space import Arch, space_from_spec

SIZE = 64
BATCH = 2
TOL = 1e-4

OFA = space_from_spec("ofa")
ARCHS = {
    "min": OFA.extreme(False),            # stem residual off, single-channel BatchNorms at this width
    "max": OFA.extreme(True),             # stem residual on, every unit
    # stem residual on, stage 1 at its base depth, stage 3 dropping units, mixed widths/expands
    "mixed_res": Arch([2, 0, 1, 0, 2], [0.25, 0.2, 0.35, 0.2, 0.35, 0.2, 0.25, 0.35, 0.2, 0.25, 0.35, 0.2, 0.25,
                                        0.35, 0.2, 0.35, 0.25, 0.2], [0, 2, 1, 0, 2, 1]),
    # stem residual off, deep stages, narrow stem, wide last stage
    "mixed_nores": Arch([0, 2, 2, 1, 0], [0.35, 0.25, 0.2, 0.35, 0.2, 0.2, 0.35, 0.25, 0.2, 0.35, 0.25, 0.2,
                                          0.35, 0.25, 0.2, 0.25, 0.35, 0.2], [1, 0, 2, 1, 0, 2]),
}


class ImageBatches:
    """A fixed calibration set (what PathEvaluator reads from a FixedImageSet)."""

    def __init__(self, batches):
        self.batches = batches

    def images(self):
        yield from self.batches

    def __len__(self):
        return sum(len(b) for b in self.batches)


def random_supernet(**config):
    net = DetOFASupernet(num_classes=5, width_mult=0.0625, divisor=1, **config)
    rng = np.random.default_rng(0)
    for key, p in net.get_parameters().items():
        if key in ("input_mean", "input_std"):
            continue
        leaf = key.rsplit("/", 1)[-1]
        if leaf == "var":
            p.d = rng.uniform(0.5, 2.0, p.shape)
        elif leaf == "gamma" and key.startswith("stages") and key.endswith("conv3/bn/gamma"):
            p.d = rng.uniform(0.1, 0.3, p.shape)   # residual branches' last BN: see the module doc
        elif leaf == "gamma":
            p.d = rng.uniform(0.5, 1.5, p.shape)
        elif leaf in ("beta", "mean", "b"):
            p.d = rng.normal(0, 0.3, p.shape)
        else:  # conv (out, in, k, k) / deconv (in, out, 4, 4, stride 2) weights: activations of order 1
            fan_in = p.shape[0] * 4 if "deconv" in key else int(np.prod(p.shape[1:]))
            p.d = rng.normal(0, 1.0 / np.sqrt(fan_in), p.shape)
    return net


def calibration_images():
    rng = np.random.default_rng(1)
    return ImageBatches([rng.uniform(0, 255, (3, 3, SIZE, SIZE)).astype(np.float32) for _ in range(2)])


@pytest.fixture(scope="module")
def supernet():
    return random_supernet()


@pytest.fixture(scope="module")
def evaluator(supernet):
    return PathEvaluator(supernet, calibration_images())


def supernet_path_outputs(supernet, evaluator, arch, x):
    """What the supernet computes for ``arch`` after BN re-calibration (the test's own graph)."""
    with evaluator.path(arch):
        v = nn.Variable.from_numpy_array(x)
        with nn.no_grad():
            outs = supernet(v)
        nn.forward_all(outs)
        return [o.d.copy() for o in outs]


def static_parameters(supernet, evaluator, arch):
    with evaluator.path(arch):
        net = extract(supernet, arch)
    return OrderedDict((k, p.d.copy()) for k, p in net.get_parameters().items())


def images(seed=7):
    return np.random.default_rng(seed).uniform(0, 255, (BATCH, 3, SIZE, SIZE)).astype(np.float32)


def run_nnp(path, x, name):
    from nnabla.utils import nnp_graph
    with nn.parameter_scope("", OrderedDict()):
        g = nnp_graph.NnpLoader(path).get_network(name, batch_size=x.shape[0])
        assert list(g.inputs) == ["x"] and set(g.outputs) == {"heatmap", "wh", "reg"}
        g.inputs["x"].d = x
        outs = [g.outputs[k] for k in ("heatmap", "wh", "reg")]
        nn.forward_all(outs)
        return [o.d.copy() for o in outs]


def run_onnx(path, x):
    try:
        import onnxruntime as ort
    except ImportError:  # never a silent pass: the test extra installs it
        pytest.fail("onnxruntime is not installed: pip install -c constraints.txt -e '.[test]' (or '.[onnx]')")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert [o.name for o in sess.get_outputs()] == ["heatmap", "wh", "reg"]
    assert sess.get_inputs()[0].shape == [x.shape[0], 3, SIZE, SIZE]
    return sess.run(None, {"x": x})


def max_error(ref, got):
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) for a, b in zip(ref, got))


@pytest.mark.parametrize("label", list(ARCHS))
def test_nnp_and_onnx_reproduce_the_supernet_path(supernet, evaluator, tmp_path, label):
    arch = ARCHS[label]
    x = images()
    ref = supernet_path_outputs(supernet, evaluator, arch, x)
    assert ref[0].shape == (BATCH, 5, SIZE // 4, SIZE // 4) and ref[1].shape == (BATCH, 2, SIZE // 4, SIZE // 4)
    for r in ref:  # the check is meaningful: outputs of order 1, not constants
        assert 0.05 < float(np.std(r)) and float(np.max(np.abs(r))) < 1e3

    nnp = str(tmp_path / f"{label}.nnp")
    rep = export_path(supernet, nnp, "nnp", SIZE, arch=arch, evaluator=evaluator, batch_size=BATCH, name="net")
    assert rep["check"]["max_error"] <= TOL and rep["bn_recalibrated_on"] == 6
    err_nnp = max_error(ref, run_nnp(nnp, x, "net"))
    assert err_nnp <= TOL, err_nnp

    # exactly the path's parameters: names and shapes of the static network, the re-calibrated values
    want = static_parameters(supernet, evaluator, arch)
    with nn.parameter_scope("", OrderedDict()):
        nn.load_parameters(nnp)
        have = OrderedDict((k, v.d.copy()) for k, v in nn.get_parameters(grad_only=False).items())
    assert list(have) == list(want)
    for k in want:
        assert have[k].shape == want[k].shape and np.array_equal(have[k], want[k]), k
    # ... which are not the supernet's stored statistics: BN was re-calibrated for this path
    stored = supernet.get_parameters()["stem/conv1/bn/mean"].d
    assert not np.allclose(have["stem/conv1/bn/mean"], stored[tuple(slice(0, s) for s in want["stem/conv1/bn/mean"]
                                                                   .shape)])
    assert rep["parameters"] == sum(v.size for v in want.values())

    nnp_bytes = rep["bytes"]
    onnx_file = str(tmp_path / f"{label}.onnx")
    rep = export_path(supernet, onnx_file, "onnx", SIZE, arch=arch, evaluator=evaluator, batch_size=BATCH)
    assert rep["opset"] == 13 and rep["check"]["max_error"] <= TOL
    err_onnx = max_error(ref, run_onnx(onnx_file, x))
    assert err_onnx <= TOL, err_onnx
    print(f"\n{label}: max |nnp - supernet| {err_nnp:.3g}, max |onnx - supernet| {err_onnx:.3g}, "
          f".nnp {nnp_bytes} B, .onnx {rep['bytes']} B")

    import onnx
    from onnx import numpy_helper
    model = onnx.load(onnx_file)
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
    props = {p.key: p.value for p in model.metadata_props}
    assert "RGB" in props["input"] and "0..255" in props["input"] and "sigmoid" in props["output.heatmap"]
    assert Arch.from_json(props["arch"]) == arch
    inits = {t.name: t for t in model.graph.initializer}
    for k, v in want.items():  # every parameter travels, with its value (BN ones as 1-D vectors)
        assert k in inits, k
        assert np.allclose(numpy_helper.to_array(inits[k]).reshape(v.shape), v), k


def test_relu6_stem_exports(tmp_path):
    """A stem with ReLU6 (NNablaNAS's ofa_resnet50 weights) converts too (ONNX Clip / ReLU6)."""
    net = random_supernet(stem_activation="relu6")
    for key, p in net.get_parameters().items():   # stem BN outputs around 6: the clip matters
        if key.startswith("stem/") and key.endswith("/bn/beta"):
            p.d = np.full(p.shape, 5.5)
    ev = PathEvaluator(net, calibration_images())
    arch = ARCHS["mixed_res"]
    x = images(4)
    ref = supernet_path_outputs(net, ev, arch, x)
    for fmt in ("nnp", "onnx"):
        path = str(tmp_path / f"r6.{fmt}")
        export_path(net, path, fmt, SIZE, arch=arch, evaluator=ev, batch_size=BATCH, name="net")
        got = run_nnp(path, x, "net") if fmt == "nnp" else run_onnx(path, x)
        assert max_error(ref, got) <= TOL, fmt


def test_onnx_opset_11_also_matches(supernet, evaluator, tmp_path):
    arch = ARCHS["mixed_res"]
    x = images(3)[:1]
    ref = supernet_path_outputs(supernet, evaluator, arch, x)
    path = str(tmp_path / "o11.onnx")
    rep = export_path(supernet, path, "onnx", SIZE, arch=arch, evaluator=evaluator, opset=11)
    assert rep["opset"] == 11
    import onnx
    assert [o.version for o in onnx.load(path).opset_import if o.domain in ("", "ai.onnx")] == [11]
    assert max_error(ref, run_onnx(path, x)) <= TOL


def test_single_channel_batchnorm_is_corrected(supernet, tmp_path):
    """nnabla-converter writes a 1-channel BN's parameters with shape [0]; the export fixes them."""
    import onnx
    from nnabla_nas_detofa.export.nnp import export_nnp
    from nnabla_nas_detofa.export.onnx import fix_single_channel_batchnorm, nnp_to_onnx_model
    net = extract(supernet, ARCHS["min"])
    assert any(p.shape == (1, 1, 1, 1) for k, p in net.get_parameters().items() if "/bn/" in k)
    nnp = export_nnp(net, str(tmp_path / "m.nnp"), SIZE)
    model = nnp_to_onnx_model(nnp, 1)
    onnx.checker.check_model(model)   # corrected already
    inits = {t.name: t for t in model.graph.initializer}
    one = [k for k, p in net.get_parameters().items() if "/bn/" in k and p.shape == (1, 1, 1, 1)]
    assert one and all(list(inits[k].dims) == [1] for k in one)
    for k in one:  # break them as the converter writes them: the fix finds exactly those
        inits[k].dims[:] = [0]
    assert fix_single_channel_batchnorm(model) == len(one)


def test_a_file_that_fails_its_check_is_not_written(supernet, evaluator, tmp_path, monkeypatch):
    path = tmp_path / "bad.nnp"
    path.write_bytes(b"the user's file")
    real = export_path_module.run_file

    def off_by_a_bit(p, fmt, x, network=None):
        outs = real(p, fmt, x, network)
        outs[1] = outs[1] + 1e-3
        return outs

    monkeypatch.setattr(export_path_module, "run_file", off_by_a_bit)
    with pytest.raises(ExportError, match="differs from the network"):
        export_path(supernet, str(path), "nnp", SIZE, arch=ARCHS["min"], evaluator=evaluator)
    assert path.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nnp"]   # no temporary left behind


def test_static_network_exports_its_own_arch_only(supernet, tmp_path):
    net = extract(supernet, ARCHS["mixed_nores"])
    rep = export_path(net, str(tmp_path / "s.nnp"), "nnp", SIZE)
    assert Arch.from_dict(rep["arch"]) == ARCHS["mixed_nores"] and rep["bn_recalibrated_on"] == 0
    assert rep["check"]["max_error"] == 0.0
    with pytest.raises(ValueError, match="only its own arch"):
        export_path(net, str(tmp_path / "t.nnp"), "nnp", SIZE, arch=ARCHS["min"])

