"""The error type every command line stops on with one clear line (never a traceback)."""
import sys


class UserError(Exception):
    """Bad input from the user: the message names the file, key path or value."""


# (module, exception names): the exception types that mean bad input
USER_ERROR_TYPES = (
    ("nnabla_nas_detofa.runners.context", ("ContextError",)),
    ("nnabla_nas_detofa.runners.launch", ("ExperimentError",)),
    ("nnabla_nas_detofa.runners.optim", ("OptimizerConfigError",)),
    ("nnabla_nas_detofa.runners.checkpoint", ("CheckpointError",)),
    ("nnabla_nas_detofa.schema", ("SchemaError",)),
    ("nnabla_nas_detofa.space.arch", ("ArchError",)),
    ("nnabla_nas_detofa.space.config", ("ConfigError",)),
    ("nnabla_nas_detofa.space.spaces", ("SpaceError",)),
    ("nnabla_nas_detofa.space.tokens", ("TokenError",)),
    ("nnabla_nas_detofa.data.records", ("DataError",)),
    ("nnabla_nas_detofa.data.images", ("ImageError",)),
    ("nnabla_nas_detofa.evaluation.coco_ap", ("ResultsError",)),
    ("nnabla_nas_detofa.path_filter.model", ("PathFilterError",)),
    ("nnabla_nas_detofa.path_filter.pathset", ("PathSetError",)),
    ("nnabla_nas_detofa.pruning.operations", ("PruningError",)),
    ("nnabla_nas_detofa.report.runs", ("ReportError",)),
    ("nnabla_nas_detofa.search.constraints", ("SearchError",)),
    ("nnabla_nas_detofa.search.latency", ("LatencyTableError",)),
)


def user_errors():
    """Exception types that mean bad input (one line, no traceback). Only modules already imported
    are looked at (an exception of a module never imported cannot have been raised), so that
    reporting an error never imports nnabla (its start-up line would be a second stderr line)."""
    types = [UserError]
    for module, names in USER_ERROR_TYPES:
        m = sys.modules.get(module)
        if m is not None:
            types += [getattr(m, n) for n in names]
    return tuple(types)


def one_line(err: Exception) -> str:
    """The message of ``err`` on one line (a message never spans lines on stderr)."""
    return " / ".join(part.strip() for part in str(err).splitlines() if part.strip()) or type(err).__name__
