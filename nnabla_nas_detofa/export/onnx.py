"""ONNX export of an extracted (static) detector through nnabla's own converter.

The network is first written as a .nnp (``export_nnp``: exactly its own parameters), then
converted by ``nnabla.utils.converter.convert_files``, the function ``nnabla_cli convert
net.nnp net.onnx`` runs (its ONNX exporter is the ``nnabla-converter`` package; this package's
``[onnx]`` extra installs it with ``onnx`` and ``onnxruntime``). The command line itself is not
used: it imports nnabla-converter's TensorFlow exporter too, which ONNX does not need.

Every function of the detector's graph has an ONNX form in the converter at opset 13 (the highest
it writes): Sub2/Div2 by the ``input_mean``/``input_std`` parameters, Convolution,
Deconvolution (ConvTranspose), BatchNormalization, ReLU, Add2, MaxPooling with padding (Pad with
-inf, then MaxPool) and the ResNet-D shortcut's AveragePooling (``ignore_border=False``,
``including_pad=False``): the converter would pad a map whose size the kernel does not divide
with edge values, which would not match, but every such map of the detector has an even size (the
input is a multiple of 32), so the pooling is a plain 2x2 / stride 2 AveragePool.

One converter defect is corrected in the written model: a BatchNormalization with a single
channel (tiny widths only; never at divisor 8) gets parameter tensors of shape ``[0]`` holding one
value, which ONNX checkers and onnxruntime refuse; their shape is set to ``[1]``
(:func:`fix_single_channel_batchnorm`). The model is then checked with ``onnx.checker`` and
documented: ``doc_string`` and ``metadata_props`` describe the input and outputs.

Graph: input ``x`` float32 (N, 3, S, S), NCHW, RGB, raw pixel values 0..255 (the network
normalises with the ImageNet mean/std itself); outputs ``heatmap`` (N, C, S/4, S/4, logits:
apply a sigmoid), ``wh`` and ``reg`` (N, 2, S/4, S/4), at stride 4.
"""
import argparse
import contextlib
import io
import json
import os
import tempfile
import warnings

from ..atomic import atomic_path
from .nnp import INPUT, OUTPUTS, export_nnp, io_description

OPSET = 13            # the highest opset nnabla-converter 1.39 writes (it offers 6, 7, 9, 10, 11, 13)
OPSETS = (11, 13)     # both checked by the tests; 13 is the default
ONNX_EXTRA = ("pip install -c constraints.txt -e '.[onnx]' && pip install --no-deps nnabla-converter==1.39.0 "
              "(`make setup` does both)")


class ExportError(RuntimeError):
    """An export that cannot be done (missing converter, failed conversion or check)."""


def require_converter():
    """nnabla's ``convert_files`` with nnabla-converter's ONNX exporter importable; one clear error otherwise."""
    try:
        import onnx  # noqa: F401
        import nnabla.utils.converter.onnx  # noqa: F401  (installed by the nnabla-converter package)
        from nnabla.utils.converter import convert_files
    except ImportError as err:
        raise ExportError(f"ONNX export needs nnabla-converter and onnx ({err}); install them with `{ONNX_EXTRA}`") \
            from None
    return convert_files


def convert_args(batch_size: int, opset: int = OPSET) -> argparse.Namespace:
    """The arguments ``nnabla_cli convert -b B -d opset_N IN.nnp OUT.onnx`` hands to ``convert_files``
    (parsed by nnabla's own ``convert`` parser, formats set as its ``resolve_file_format`` sets them)."""
    from nnabla.utils.cli.convert import add_convert_command
    parser = argparse.ArgumentParser()
    add_convert_command(parser.add_subparsers())
    args = parser.parse_args(["convert", "-b", str(int(batch_size)), "-d", f"opset_{int(opset)}", "in.nnp",
                              "out.onnx"])
    args.import_format, args.export_format = "NNP", "ONNX"
    return args


def nnp_to_onnx_model(nnp_path: str, batch_size: int, opset: int = OPSET):
    """The ONNX ModelProto nnabla's converter makes of ``nnp_path`` (single-channel BN corrected)."""
    if opset not in OPSETS:
        raise ExportError(f"opset {opset!r}: expected one of {list(OPSETS)}")
    convert_files = require_converter()
    import onnx
    folder = os.path.dirname(os.path.abspath(nnp_path))
    fd, tmp = tempfile.mkstemp(prefix=".convert.", suffix=".onnx", dir=folder)
    os.close(fd)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), warnings.catch_warnings():  # it prints progress, warns on numpy
            warnings.simplefilter("ignore", DeprecationWarning)
            convert_files(convert_args(batch_size, opset), [nnp_path], tmp)
        if os.path.getsize(tmp) == 0:
            raise ExportError(f"nnabla's converter wrote no model for {nnp_path}: {log.getvalue().strip()[-300:]}")
        model = onnx.load(tmp)
    except ExportError:
        raise
    except Exception as err:  # the converter's own errors (unsupported function, ...) as one line
        raise ExportError(f"nnabla's ONNX converter failed on {nnp_path}: {type(err).__name__}: {err}") from None
    finally:
        os.unlink(tmp)
    fix_single_channel_batchnorm(model)
    return model


def fix_single_channel_batchnorm(model) -> int:
    """Set the shape of a BatchNormalization's scale/bias/mean/var tensors that nnabla-converter wrote
    as ``[0]`` (its shape rule drops every axis of size 1, the channel axis of a 1-channel BN too)
    to ``[1]``; returns how many were corrected. The data is unchanged (one value each)."""
    inits = {t.name: t for t in model.graph.initializer}
    fixed = 0
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        for name in node.input[1:]:
            t = inits.get(name)
            if t is not None and list(t.dims) == [0] and (len(t.raw_data) == 4 or len(t.float_data) == 1):
                t.dims[:] = [1]
                fixed += 1
    return fixed


def document(model, metadata=None) -> None:
    """Describe the input and outputs in the model (``doc_string``, ``metadata_props``, value infos)."""
    import onnx
    desc = io_description()
    model.doc_string = desc["summary"]
    model.graph.doc_string = desc["summary"]
    for vi in model.graph.input:
        if vi.name == INPUT:
            vi.doc_string = desc["input"]
    for vi in model.graph.output:
        if vi.name in desc["outputs"]:
            vi.doc_string = desc["outputs"][vi.name]
    props = {"input": desc["input"], **{f"output.{k}": v for k, v in desc["outputs"].items()}}
    props.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    model.producer_name = "nnabla-nas-detofa (nnabla-converter)"


def export_onnx(net, path: str, input_size: int, batch_size: int = 1, name: str = "detofa", opset: int = OPSET,
                metadata=None) -> str:
    """Write ``net`` (a StaticDetector) to ``path`` as ONNX, atomically; returns the path.

    ``metadata``: extra ``{key: value}`` stored in the model's ``metadata_props`` (e.g. the arch)."""
    require_converter()  # fail before any work when the converter is missing
    import onnx
    with atomic_path(path, suffix=".onnx") as tmp:
        nnp_tmp = tmp[:-len(".onnx")] + ".nnp"
        try:
            export_nnp(net, nnp_tmp, input_size, batch_size, name=name)
            model = nnp_to_onnx_model(nnp_tmp, batch_size, opset)
        finally:
            if os.path.exists(nnp_tmp):
                os.unlink(nnp_tmp)
        names_in = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
        names_out = [o.name for o in model.graph.output]
        if names_in != [INPUT] or names_out != list(OUTPUTS):
            raise ExportError(f"{path}: the converted model has inputs {names_in} and outputs {names_out}, "
                              f"expected [{INPUT!r}] and {list(OUTPUTS)}")
        document(model, metadata)
        try:
            onnx.checker.check_model(model)
        except Exception as err:
            raise ExportError(f"{path}: the converted model fails onnx.checker: {err}") from None
        onnx.save(model, tmp)
    return path
