"""The error type every command line stops on with one clear line (never a traceback)."""


class UserError(Exception):
    """Bad input from the user: the message names the file, key path or value."""
