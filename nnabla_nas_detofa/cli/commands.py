"""Tool subcommands of ``python -m nnabla_nas_detofa``: each module has ``register(subparsers)``
that adds a parser with ``set_defaults(func=...)``; ``func(args)`` returns an exit code."""
import importlib

COMMAND_MODULES = (
    "nnabla_nas_detofa.cli.cmd_run",
    "nnabla_nas_detofa.cli.cmd_space",
    "nnabla_nas_detofa.cli.cmd_data",
    "nnabla_nas_detofa.cli.cmd_evaluate",
    "nnabla_nas_detofa.cli.cmd_path_filter",
    "nnabla_nas_detofa.cli.cmd_transfer",
    "nnabla_nas_detofa.cli.cmd_prune",
    "nnabla_nas_detofa.cli.cmd_export",
    "nnabla_nas_detofa.cli.cmd_latency",
    "nnabla_nas_detofa.cli.cmd_report",
    "nnabla_nas_detofa.cli.cmd_search",
)


def register_all(subparsers):
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
