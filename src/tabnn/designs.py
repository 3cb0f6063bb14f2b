"""Model designs as the user names them: a preset or ``mlp:SIZES``, parsed in one place.

Imported by the command line at start-up, so it imports nothing heavy.
"""

from __future__ import annotations

from .errors import UsageError

PRESETS = ("default", "wide", "deep")

DESIGN_HELP = "default, wide, deep or mlp:SIZES such as mlp:256-128"


def parse_design(name: str) -> str | list[int]:
    """``default``, ``wide``, ``deep`` or ``mlp:256-128`` -> the estimator's ``hidden``.

    >>> parse_design("mlp:256-128"), parse_design("wide")
    ([256, 128], 'wide')
    """
    name = name.strip()
    if name in PRESETS:
        return name
    sizes = name[4:].split("-") if name.startswith("mlp:") else []
    if sizes and all(size.isdigit() and int(size) > 0 for size in sizes):
        return [int(size) for size in sizes]
    raise UsageError(
        f"Unknown design {name!r}; valid designs: {', '.join(PRESETS)} or mlp:SIZES such as "
        "mlp:256-128."
    )
