"""``python -m nnabla_nas_detofa <tool> ...``: the experiment run plus the tool subcommands."""
import sys

from .argtypes import OneLineParser
from .commands import register_all
from .errors import one_line, user_errors


def build_parser():
    p = OneLineParser(prog="python -m nnabla_nas_detofa",
                                description="DetOFA tools (run an experiment with the 'run' subcommand)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register_all(sub)
    return p


def main_tools(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:      # -h, or a usage error already printed on one line
        return done.code if isinstance(done.code, int) else 2
    try:
        return args.func(args) or 0
    except user_errors() as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
