"""``nnabla_nas -f EXP.json`` / ``python -m nnabla_nas_detofa run -f EXP.json``: run an experiment.

NNablaNAS 0.15's hydra form works too: ``nnabla_nas experiment=detofa/demo_detofa [key=value ...]``
composes the experiment from ``configs/`` (``cli.hydra_configs``), flags still win."""
from ..reading import read_json
from .errors import UserError


def add_run_args(p, overrides: bool = False):
    """The run flags; ``overrides``: also hydra ``key=value`` words (``experiment=detofa/NAME``)."""
    if overrides:
        p.add_argument("overrides", nargs="*", metavar="key=value",
                       help="hydra form instead of -f: experiment=detofa/NAME [hparams.epoch=3 ...]")
        p.add_argument("-f", "--file", help="experiment JSON (NNablaNAS JSON-era schema)")
    else:
        p.add_argument("-f", "--file", required=True, help="experiment JSON (NNablaNAS JSON-era schema)")
    p.add_argument("-c", "--context", choices=("cpu", "cudnn", "cuda"), help="NNabla context (JSON: args.context)")
    p.add_argument("-d", "--device-id", help="GPU id (JSON: args.device_id)")
    p.add_argument("-t", "--type-config", choices=("float", "half", "mixed_half"), help="JSON: args.type_config")
    p.add_argument("-s", "--search", action="store_const", const=True, default=None,
                   help="build the search network (supernet)")
    p.add_argument("-a", "--algorithm", help="runner name (JSON: args.algorithm)")
    p.add_argument("-o", "--output-path", help="output folder (JSON: args.output_path)")
    p.add_argument("--save-nnp", action="store_const", const=True, default=None, help="JSON: args.save_nnp")


def load_experiment(path):
    """The experiment file's JSON (one-line UserError naming the file: unreadable, not UTF-8,
    malformed, nested too deeply, a key given twice)."""
    return read_json(path, UserError, "experiment file")


def merge_flags(conf, args):
    """Flags win over the JSON's ``args`` object."""
    if not isinstance(conf, dict):
        return conf
    given = conf.setdefault("args", {})
    if not isinstance(given, dict):
        return conf
    for key in ("context", "device_id", "type_config", "search", "algorithm", "output_path", "save_nnp"):
        v = getattr(args, key)
        if v is not None:
            given[key] = v
    return conf


def experiment_of(args):
    """(experiment dict, source name) from ``-f FILE`` or the hydra ``key=value`` words."""
    words = list(getattr(args, "overrides", None) or [])
    if args.file and words:
        raise UserError(f"give either -f {args.file} or hydra words ({' '.join(words)}), not both")
    if args.file:
        return load_experiment(args.file), args.file
    from .hydra_configs import compose_experiment, is_hydra_argv
    if not is_hydra_argv(words):
        raise UserError("give an experiment: -f EXPERIMENT.json, or experiment=detofa/NAME [key=value ...]")
    return compose_experiment(words), " ".join(words)


def run_from_args(args):
    conf, source = experiment_of(args)        # file errors come before nnabla is imported
    conf = merge_flags(conf, args)
    from ..runners.launch import run_experiment
    return run_experiment(conf, source=source)


def register(sub):
    p = sub.add_parser("run", help="run an experiment JSON (same as `nnabla_nas -f`)")
    add_run_args(p)
    p.set_defaults(func=lambda args: (run_from_args(args), 0)[1])
