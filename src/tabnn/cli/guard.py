"""How every command meets the user's errors: tabnn's own errors and file-system refusals
become one message and an exit code (never a traceback), warnings become notes, Ctrl-C and
SIGTERM end the command through its clean-up."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import typer

from ..errors import TabnnError, TabnnWarning
from . import render

INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C
TERMINATED = 143  # ... and by SIGTERM (kill, a scheduler's timeout)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that its clean-up runs as for Ctrl-C:
    Python's default SIGTERM ends the process without running ``finally`` blocks, which
    would leave temporary files and half-written runs behind."""


def raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def user_errors(quiet: bool = False):
    """Turn tabnn's own errors (and file-system refusals) into a message and an exit code;
    tabnn's warnings become notes on stderr (none with ``quiet``), printed before any error."""
    try:
        with _notes(quiet):
            yield
    except TabnnError as error:
        fail(str(error), error.exit_code)
    except MemoryError:  # tabnn's own are TabnnErrors: this is reading a table, ...
        fail("out of memory: the table, or the work asked of it, is too large for this machine.", 1)
    except OSError as error:  # permission denied, disk full, ...: the user's to fix
        where = f" '{error.filename}'" if error.filename else ""
        fail(f"{error.strerror or error}{where}.", 1)
    except Terminated:
        fail("terminated; nothing was written.", TERMINATED)
    except KeyboardInterrupt:
        fail("interrupted; nothing was written.", INTERRUPTED)


@contextmanager
def _notes(quiet: bool):
    """Collect the block's warnings; print tabnn's as notes, pass the others on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TabnnWarning)
        try:
            yield
        finally:
            others = [w for w in caught if not issubclass(w.category, TabnnWarning)]
            notes = dict.fromkeys(str(w.message) for w in caught if w not in others)
    for note in notes if not quiet else ():
        render.show_note(note)
    for w in others:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def fail(message: str, code: int):
    render.show_error(message)
    raise typer.Exit(code) from None
