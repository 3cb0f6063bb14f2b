"""How every command meets the user's errors: tabnn's own errors and file-system refusals
become one message and an exit code (never a traceback), warnings become notes, Ctrl-C and
SIGTERM end the command through its clean-up."""

from __future__ import annotations

import os
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


class ClosedPipeSafe:
    """``sys.stdout`` for a reader that may stop reading (``tabnn train ... | head``): once
    the pipe is closed, what is still written goes to /dev/null (as the Python docs' "Note
    on SIGPIPE" does) and the command ends as its work did, 0 for a model saved. Output that
    nobody reads any more is no failure of the work; Click would exit 1 without a word."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._discard_the_rest()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._discard_the_rest()

    def _discard_the_rest(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())  # the stream's buffer drains there too
        os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)  # isatty, fileno, encoding, ...


def fail(message: str, code: int):
    render.show_error(message)
    raise typer.Exit(code) from None
