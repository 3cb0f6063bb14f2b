"""The exceptions tabnn raises for problems a user can fix.

Each class also inherits the builtin it refines, so ``except ValueError`` keeps working
for code that does not know tabnn. The command line turns these into a one-line message
and the exit code below (no traceback); anything else is a bug and keeps its traceback.
"""


class TabnnError(Exception):
    """Base class of every error tabnn raises on purpose."""

    exit_code = 1


class UsageError(TabnnError, ValueError):
    """The request itself is wrong: a bad option, a column that does not exist (exit 2)."""

    exit_code = 2


class InputNotFoundError(UsageError, FileNotFoundError):
    """A data file or model directory that does not exist (exit 2)."""


class DataError(TabnnError, ValueError):
    """The data cannot be used as it is: unreadable, empty, wrong types (exit 1)."""


class SchemaError(DataError):
    """The data does not match what the model was trained on (exit 1)."""


class TabnnWarning(UserWarning):
    """Something the user should know that does not stop the work (a label never seen
    positive, a column spec read one of two ways); the command line prints it as a note."""


class ModelError(TabnnError, ValueError):
    """A model directory that is half-written, tampered with or from a newer tabnn (exit 1)."""


class OutOfMemoryError(TabnnError, MemoryError):
    """The work ran out of memory although its sizes passed the checks made before it: the
    table, or what it needs beside the network, is too large for this machine (exit 1)."""
