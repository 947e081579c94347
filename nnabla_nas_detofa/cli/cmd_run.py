"""``python -m nnabla_nas_detofa run -f EXP.json``: the same run as ``nnabla_nas -f``."""
from .main import add_run_args, run_from_args


def register(sub):
    p = sub.add_parser("run", help="run an experiment JSON (same as `nnabla_nas -f`)")
    add_run_args(p)
    p.set_defaults(func=lambda args: (run_from_args(args), 0)[1])
