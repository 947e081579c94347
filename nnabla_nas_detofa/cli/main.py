"""Console entry point ``nnabla_nas`` (replaces NNablaNAS 0.15.0's broken script); the tools
(``python -m nnabla_nas_detofa``) live in ``tools``."""
import sys

from .argtypes import OneLineParser
from .cmd_run import add_run_args, run_from_args
from .errors import one_line, user_errors


def main(argv=None):
    parser = OneLineParser(
        prog="nnabla_nas",
        description="NNablaNAS launcher with DetOFA (replaces nnabla-nas 0.15.0's console script, which "
                    "needs hydra and CUDA): nnabla_nas -f EXPERIMENT.json [-c cpu|cudnn] [-o OUT], or NNablaNAS "
                    "0.15's hydra form: nnabla_nas experiment=detofa/NAME [key=value ...]")
    add_run_args(parser, overrides=True)
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:      # -h, or a usage error already printed on one line
        return done.code if isinstance(done.code, int) else 2
    try:
        run_from_args(args)
    except user_errors() as err:
        msg = one_line(err)
        src = args.file or " ".join(args.overrides)
        print(f"error: {msg if src in msg else f'{src}: {msg}'}", file=sys.stderr)
        return 2
    return 0
