"""Model designs as the user names them: a named design or ``mlp:SIZES``, parsed in one
place, which of the two networks a design trains (``network_for``), and the parameters
a ``--models`` name (a design or a preset) stands for.

Imported by the command line at start-up, so it imports nothing heavy.
"""

from __future__ import annotations

from ..errors import UsageError

NAMED_DESIGNS = ("default", "wide", "deep")
# What each ``TabNNClassifier(preset=...)`` chooses for the parameters left at "auto"
# (docs/default-model.md has the suite runs behind each): ``fast`` one network, ``best`` a
# bag of networks on piecewise-linear encodings of the numeric columns.
PRESET_CHOICES = {
    "fast": {"bagging": None, "numeric_embedding": "none"},
    "best": {"bagging": 5, "numeric_embedding": "ple"},
}
PRESET_NAMES = tuple(PRESET_CHOICES)


def bag_folds(bagging, preset: str) -> int | None:
    """The folds ``bagging`` means under ``preset`` (its choice for "auto"), None for no bag."""
    return PRESET_CHOICES[preset]["bagging"] if bagging == "auto" else bagging


DESIGN_HELP = "default, wide, deep or mlp:SIZES such as mlp:256-128"


def parse_design(name: str) -> str | list[int]:
    """``default``, ``wide``, ``deep`` or ``mlp:256-128`` -> the estimator's ``hidden``.

    >>> parse_design("mlp:256-128"), parse_design("wide")
    ([256, 128], 'wide')
    """
    name = name.strip()
    if name in NAMED_DESIGNS:
        return name
    sizes = [whole_number(size) for size in name[4:].split("-")] if name.startswith("mlp:") else []
    if sizes and None not in sizes:
        return sizes
    raise UsageError(
        f"Unknown design {abridged(name)!r}; valid designs: {', '.join(NAMED_DESIGNS)} or "
        "mlp:SIZES such as mlp:256-128."
    )


def network_for(ensemble_size: int, numeric_embedding: str) -> str:
    """The network a design trains: the efficient ensemble (``ensemble.EnsembleMLP``)
    when it has several members or embeds the numeric columns, else a plain MLP
    (``mlp.TabularMLP``)."""
    return "ensemble" if ensemble_size > 1 or numeric_embedding != "none" else "mlp"


def design_name(hidden: str | list[int]) -> str:
    """The estimator's ``hidden`` as the command line names the design (``parse_design``
    reversed).

    >>> design_name("wide"), design_name([256, 128])
    ('wide', 'mlp:256-128')
    """
    return hidden if isinstance(hidden, str) else "mlp:" + "-".join(map(str, hidden))


MAX_DIGITS = 18  # no size of more digits fits any memory; int() refuses 4,300 digits


def whole_number(text: str) -> int | None:
    """``text`` as a whole number >= 1 in ASCII digits, or None: no sign, no other digits
    (``"²".isdigit()`` is true, yet ``int("²")`` fails) and at most MAX_DIGITS of them.

    >>> whole_number("256"), whole_number("0"), whole_number("²"), whole_number("9" * 19)
    (256, None, None, None)
    """
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS and int(text) > 0:
        return int(text)
    return None


def abridged(text: str, limit: int = 40) -> str:
    """A user's value for a message: whole if short, else its start and its length."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def design_params(name: str) -> dict:
    """The estimator parameters a ``--models`` name stands for: a preset (``fast``,
    ``best``: the default design with that preset) or a design (``default``, ``wide``,
    ``deep``, ``mlp:256-128``: its ``hidden``).

    >>> design_params("best"), design_params("mlp:64")
    ({'hidden': 'default', 'preset': 'best'}, {'hidden': [64]})
    """
    if name.strip() in PRESET_NAMES:
        return {"hidden": "default", "preset": name.strip()}
    try:
        return {"hidden": parse_design(name)}
    except UsageError as error:
        raise UsageError(f"{error} Or a preset: {', '.join(PRESET_NAMES)}.") from None
