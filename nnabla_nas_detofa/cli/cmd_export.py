"""``export``: one path of a trained run as a deployable .nnp (Neural Network Console / NNabla) or ONNX file.

    python -m nnabla_nas_detofa export --arch A.json --weights RUN/supernet.h5 --format nnp|onnx -o OUT
        [--index I] [--run RUN] [--input-size S] [--batch-size B] [-c cpu|cudnn] [--force]

The network settings, the search space and the BatchNorm calibration data come from the run's own
files (``run.json``, ``experiment.json``, ``measurement_sets.json``) in the folder of the weights,
or in ``--run``. Supernet weights (``is_supernet_weights``) are re-calibrated on the run's fixed
calibration set before the path is extracted; a static network's weight file is exported as it is.
The written file is run (NnpLoader / onnxruntime) and compared with the network before it is put
in place; the command prints one JSON line describing it (input, outputs, check errors, size).

An existing output file is never replaced unless ``--force`` is given (then it is replaced
atomically, only after the new file passed its check); an existing folder is never an output.
"""
import json
import os
import sys

from ..space import ArchError, ConfigError, check_input_size
from ..space.arch import read_arch_entries
from .errors import UserError

FORMAT_CHOICES = ("nnp", "onnx")
EXTENSIONS = {"nnp": ".nnp", "onnx": ".onnx"}


def _msg(err) -> str:
    """The message of an exception (a KeyError's without the quotes str() adds)."""
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


def _check_output(args, fmt):
    out = args.output
    ext = EXTENSIONS[fmt]
    if os.path.isdir(out):
        raise UserError(f"-o {out}: is a folder; give the file to write, e.g. {os.path.join(out, 'detector' + ext)}")
    if not out.lower().endswith(ext):
        raise UserError(f"-o {out}: the name of a --format {fmt} file must end with {ext}")
    if os.path.lexists(out) and not args.force:
        raise UserError(f"-o {out}: the file exists; the export never replaces a file unless --force is given")
    parent = os.path.dirname(os.path.abspath(out))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise UserError(f"-o {out}: {parent} is not a folder")


def _read_arch(args):
    try:
        entries = read_arch_entries(args.arch)
    except ArchError as err:
        raise UserError(str(err)) from None
    if args.index is None:
        if len(entries) != 1:
            raise UserError(f"--arch {args.arch}: the file holds {len(entries)} archs; choose one with --index "
                            f"(0..{len(entries) - 1})")
        return entries[0]
    if not 0 <= args.index < len(entries):
        raise UserError(f"--index {args.index}: {args.arch} holds {len(entries)} arch(s) (0..{len(entries) - 1})")
    return entries[args.index]


def _run_folder(args):
    from ..runners.launch import ExperimentError
    from ..runners.run_folder import RunFolder
    if args.run is not None:
        folder, hint = args.run, " (--run)"
    else:
        folder = os.path.dirname(os.path.abspath(args.weights))
        hint = (f"; the network settings and calibration data come from the run's files next to --weights "
                f"{args.weights}: give the run folder with --run")
    try:
        return RunFolder.open(folder, hint)
    except ExperimentError as err:
        raise UserError(str(err)) from None


def _load_network(run, arch, weights):
    """(model, is_supernet): a supernet of the run with ``weights``, or the static network of ``arch``."""
    from ..nets.detector import read_parameters
    from ..nets.detofa_resnet50 import is_supernet_weights
    from ..nets.static import StaticDetector
    from ..nets.supernet import DetOFASupernet
    try:
        arrays = read_parameters(weights)
    except Exception as err:  # nnabla's loader raises many types for a file that is not a weight file
        raise UserError(f"--weights {weights}: cannot read parameters ({type(err).__name__}: {err})") from None
    static = StaticDetector(run.config, arch)
    if is_supernet_weights(arrays, static):
        model = DetOFASupernet(space="ofa", **run.config.to_dict())
        try:
            model.set_parameter_arrays(arrays, where=weights)
        except (KeyError, ValueError) as err:
            raise UserError(f"--weights: {_msg(err)}: not a supernet of the run in "
                            f"{run.folder} ({run.config.to_dict()})") from None
        model.set_arch(arch)
        return model, True
    try:
        static.copy_from(arrays, where=weights)
    except (KeyError, ValueError) as err:
        raise UserError(f"--weights: {_msg(err)}: not a weight file of this run's "
                        f"network for arch {arch.to_json()}") from None
    return static, False


def run_export(args):
    fmt = str(args.format).lower()
    if fmt not in FORMAT_CHOICES:
        raise UserError(f"--format {args.format}: expected one of {', '.join(FORMAT_CHOICES)}")
    _check_output(args, fmt)
    if not os.path.isfile(args.weights):
        raise UserError(f"--weights {args.weights}: no such file")
    if args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: expected a positive integer")
    from ..export import ExportError, export_path
    from ..export.onnx import require_converter
    if fmt == "onnx":
        try:
            require_converter()
        except ExportError as err:
            raise UserError(str(err)) from None
    entry = _read_arch(args)
    run = _run_folder(args)
    from ..runners.launch import ExperimentError
    try:
        arch = run.check_arch(entry.arch, f"--arch {entry.where}")
    except ExperimentError as err:
        raise UserError(str(err)) from None
    try:
        size = check_input_size(args.input_size if args.input_size is not None else run.input_size, "--input-size")
    except ConfigError as err:
        raise UserError(str(err)) from None

    from ..runners.context import make_context, use_context
    ctx, _ = make_context(args.context)
    use_context(ctx)
    model, supernet = _load_network(run, arch, args.weights)
    evaluator, loaders = None, {}
    if supernet:
        from ..evaluation.path_eval import PathEvaluator
        from ..runners.run_folder import close_loaders
        calib, loaders = run.calibration_set()
        evaluator = PathEvaluator(model, calib)
    try:
        report = export_path(model, args.output, fmt, size, arch=arch, evaluator=evaluator,
                             batch_size=args.batch_size, name="detofa",
                             metadata={"weights": os.path.abspath(args.weights), "run": os.path.abspath(run.folder)})
    except ExportError as err:
        raise UserError(str(err)) from None
    finally:
        if loaders:
            close_loaders(loaders)
    report["weights"] = os.path.abspath(args.weights)
    report["weights_kind"] = "supernet (BN re-calibrated)" if supernet else "static network"
    report["run"] = os.path.abspath(run.folder)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


def register(sub):
    p = sub.add_parser("export", help="write one path of a run as a .nnp (NNabla / Neural Network Console) or ONNX "
                                      "file, BN re-calibrated and checked numerically")
    p.add_argument("--arch", required=True, help="arch file: one arch dict, a list, JSON Lines or {\"arch\": ...} "
                                                 "lines (with several, pick one with --index)")
    p.add_argument("--index", type=int, default=None, help="which arch of a file of many (0-based)")
    p.add_argument("--weights", required=True, help="supernet.h5 of a run (or a static network's weight file)")
    p.add_argument("--format", required=True, help="nnp or onnx")
    p.add_argument("-o", "--output", required=True, help="the file to write (.nnp / .onnx)")
    p.add_argument("--run", default=None, help="the run folder (default: the folder of --weights)")
    p.add_argument("--input-size", type=int, default=None,
                   help="input height = width of the exported network (default: the run's; BN is re-calibrated "
                        "at the run's size)")
    p.add_argument("--batch-size", type=int, default=1, help="batch size of the exported network (fixed)")
    p.add_argument("-c", "--context", default="cpu", choices=("cpu", "cudnn"),
                   help="where BN re-calibration runs (cudnn needs the CUDA extension)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=run_export)
