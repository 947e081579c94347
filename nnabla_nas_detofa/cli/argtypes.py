"""Command-line flags are checked with the experiment files' value specs (``nnabla_nas_detofa.schema``)
and every argparse mistake is one line on stderr.

``p.add_argument("--lr", type=flag(Num(0, lo_open=True)), default=3e-4)`` refuses ``nan``, ``inf``,
``-1`` and ``abc`` with ``prog: error: argument --lr: 'nan': expected a number in (0, inf)``,
before any work starts. An ``Int`` spec parses the text as an integer, any other spec as a number.
"""
import argparse
import sys

from ..schema import Int, SchemaError, Spec


def flag(spec: Spec):
    """An argparse ``type=`` that parses the text and checks it against ``spec``."""
    integer = isinstance(spec, Int)

    def parse(text: str):
        try:
            value = int(text, 10) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {spec.expected()}") from None
        try:
            return spec.check(value, "value")
        except SchemaError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {spec.expected()}") from None

    parse.__name__ = "integer" if integer else "number"
    return parse


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prog: error: ...``), exit status 2;
    its sub-command parsers are of the same class."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} -h)\n")
        sys.exit(2)
