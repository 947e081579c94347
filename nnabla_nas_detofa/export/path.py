"""Export one path of a network: the one definition the ``export`` command and ``--save-nnp`` share.

``export_path`` extracts the path as a static network (``nets.static.extract``: its own copy of
the leading weight blocks), with the BatchNorm statistics re-calibrated by the run's evaluator
(``PathEvaluator.path``: the run's fixed calibration set) when one is given, writes it as .nnp or
ONNX, runs the written file (NnpLoader / onnxruntime) on a fixed batch of raw images and compares
it with the source network's path in the same state: the file replaces ``path`` only when every
output agrees to ``tolerance`` (see ``check.compare``), so a file that exists is a checked file.
"""
import os
import time
from collections import OrderedDict
from typing import Optional

import numpy as np

from ..atomic import atomic_path
from ..evaluation.path_eval import inference_context
from ..nets.static import extract
from ..space import Arch, mflops
from .check import FORMATS, TOLERANCE, check_images, compare, network_outputs, nnp_parameters, run_file
from .nnp import INPUT, OUTPUTS, export_nnp, io_description
from .onnx import OPSET, ExportError, export_onnx

EXTENSIONS = {"nnp": ".nnp", "onnx": ".onnx"}


def export_path(model, path: str, fmt: str, input_size: int, arch=None, evaluator=None, batch_size: int = 1,
                name: str = "detofa", check: bool = True, tolerance: float = TOLERANCE, opset: int = OPSET,
                metadata: Optional[dict] = None) -> dict:
    """Write path ``arch`` of ``model`` (a supernet, or a static network: default its own arch) to
    ``path`` as ``fmt`` ('nnp' or 'onnx') and return a report (dict, JSON-ready).

    ``evaluator``: a ``PathEvaluator`` of ``model`` whose calibration set re-calibrates the path's
    BatchNorm statistics first (a supernet's statistics belong to every path it trained); None
    keeps the network's statistics (a static network's own). ``check``: compare the written file
    with the network on ``check_images`` before it replaces ``path`` (ExportError if any output
    differs by more than ``tolerance``). ``name``: the .nnp network name.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {list(FORMATS)}")
    t0 = time.time()
    arch = model.arch if arch is None else Arch.from_dict(arch)
    if not model.is_supernet and arch != model.arch:
        raise ValueError(f"a static network runs only its own arch {model.arch.to_json()}, not {arch.to_json()}")
    x = check_images(batch_size, input_size)
    ctx = evaluator.path(arch) if evaluator is not None else inference_context(model)
    with ctx:
        if evaluator is None and arch != model.arch:
            model.set_arch(arch)  # a supernet (a static network has no other path)
        net = extract(model, arch)   # BN statistics as re-calibrated for this path
        reference = network_outputs(model, x) if check else None
    desc = io_description()
    meta = OrderedDict([("arch", arch.to_json()), ("input_size", input_size), ("batch_size", batch_size),
                        ("num_classes", model.config.num_classes), ("network", model.config.to_dict())])
    meta.update(metadata or {})
    with atomic_path(path, suffix=EXTENSIONS[fmt]) as tmp:
        if fmt == "nnp":
            export_nnp(net, tmp, input_size, batch_size, name=name)
        else:
            export_onnx(net, tmp, input_size, batch_size, name=name, opset=opset, metadata=meta)
        report = OrderedDict([("path", os.path.abspath(path)), ("format", fmt), ("arch", arch.to_dict()),
                              ("input_size", input_size), ("batch_size", batch_size),
                              ("mflops", mflops(arch, model.config, input_size)),
                              ("parameters", int(sum(int(np.prod(p.shape)) for p in net.get_parameters().values()))),
                              ("bn_recalibrated_on", len(evaluator.calib) if evaluator is not None and
                               evaluator.calib is not None else 0)])
        if fmt == "nnp":
            report["network"] = name
            _check_parameter_set(tmp, net)
        else:
            report["opset"] = opset
        report["input"] = {INPUT: desc["input"]}
        report["outputs"] = {k: desc["outputs"][k] for k in OUTPUTS}
        if check:
            errors = compare(reference, run_file(tmp, fmt, x, network=name))
            worst = max(e["error"] for e in errors.values())
            report["check"] = {"images": f"{batch_size} x uniform random 0..255 (seed 0)", "tolerance": tolerance,
                               "errors": errors, "max_error": worst}
            if not worst <= tolerance:
                raise ExportError(f"{path}: the exported {fmt} file differs from the network by {worst:.3g} "
                                  f"(> {tolerance:g}); nothing written. Per output: "
                                  + ", ".join(f"{k} {v['max_abs_error']:.3g}" for k, v in errors.items()))
        report["bytes"] = os.path.getsize(tmp)
    report["seconds"] = round(time.time() - t0, 3)
    return report


def _check_parameter_set(nnp_path: str, net) -> None:
    """The .nnp carries exactly the static network's parameters (names and shapes), nothing else."""
    have = nnp_parameters(nnp_path)
    want = OrderedDict((k, tuple(p.shape)) for k, p in net.get_parameters().items())
    if dict(have) != dict(want):
        extra = sorted(set(have) - set(want))
        missing = sorted(set(want) - set(have))
        shapes = sorted(k for k in set(have) & set(want) if have[k] != want[k])
        raise ExportError(f"{nnp_path}: parameters differ from the network's (extra {extra[:3]}, missing "
                          f"{missing[:3]}, other shapes {shapes[:3]})")
