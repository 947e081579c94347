"""Console entry point ``nnabla_nas`` (replaces NNablaNAS 0.15.0's broken script); the tools
(``python -m nnabla_nas_detofa``) live in ``tools``."""
import argparse
import sys

from .cmd_run import add_run_args, run_from_args
from .errors import user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="nnabla_nas",
        description="NNablaNAS launcher with DetOFA (replaces nnabla-nas 0.15.0's console script, which "
                    "needs hydra and CUDA): nnabla_nas -f EXPERIMENT.json [-c cpu|cudnn] [-o OUT]")
    add_run_args(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except user_errors() as err:
        msg = str(err)
        print(f"error: {msg if args.file in msg else f'{args.file}: {msg}'}", file=sys.stderr)
        return 2
    return 0
