"""The ``tabnn`` command line (entry point ``tabnn = "tabnn.cli:main"``).

The package is split by concern: :mod:`.app` (the Typer app and its commands),
:mod:`.options` (option types and checks), :mod:`.render` (what is printed),
:mod:`.progress` (progress bars). Only ``app`` and ``main`` are re-exported here.
"""

from .app import app, main

__all__ = ["app", "main"]
