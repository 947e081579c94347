"""The error type every command line stops on with one clear line (never a traceback)."""


class UserError(Exception):
    """Bad input from the user: the message names the file, key path or value."""


def user_errors():
    """Exception types that mean bad input (one line, no traceback)."""
    from ..runners.context import ContextError
    from ..runners.launch import ExperimentError
    from ..space import ArchError, ConfigError, SpaceError
    types = [UserError, ExperimentError, ContextError, ArchError, ConfigError, SpaceError]
    from ..data.records import DataError
    from ..path_filter import PathFilterError, PathSetError
    types += [DataError, PathFilterError, PathSetError]
    from ..pruning import PruningError
    types.append(PruningError)
    return tuple(types)
