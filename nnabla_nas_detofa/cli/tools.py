"""``python -m nnabla_nas_detofa <tool> ...``: the experiment run plus the tool subcommands."""
import argparse
import sys

from .commands import register_all
from .errors import user_errors


def build_parser():
    p = argparse.ArgumentParser(prog="python -m nnabla_nas_detofa",
                                description="DetOFA tools (run an experiment with the 'run' subcommand)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register_all(sub)
    return p


def main_tools(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except user_errors() as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
