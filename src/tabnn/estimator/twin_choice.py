"""How much the twin member (``nn.twins``) earns in a model: chosen on held-out rows.

Each held-out row (the validation split's, or every training row's out-of-fold rows in a
bag) is looked up among the training rows of a member that held it out, so its twin
comes from rows that member trained on and never from itself. Greedy ensemble selection
(``estimator.selection``, log loss) then weighs two models on those rows: the network
alone, and the network with the twins' answer on the rows that have a twin. The weight of
the second is the twins' share on such rows. Too few held-out rows with a twin
(``MIN_TWIN_ROWS``) say nothing: the weight is then 0, and a model whose twins earn no
weight stores no rows.
"""

from __future__ import annotations

import numpy as np

from ..nn.twins import TwinMember, as_outputs
from .selection import log_loss, select_ensemble

MIN_TWIN_ROWS = 10


def held_out_twins(held, rows: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each held-out row's twins' answer, whether it has a twin) for ``rows`` (sorted
    positions into ``held``'s arrays), each looked up among the training rows of the first
    member that held it out (members sharing their rows are looked up once)."""
    answers = np.zeros((len(rows), outputs.shape[1]))
    has, done = np.zeros(len(rows), bool), np.zeros(len(rows), bool)
    seen = set()
    for train, val in held.member_rows:
        if (id(train), id(val)) in seen or not len(val):
            continue
        seen.add((id(train), id(val)))
        member = TwinMember.of_rows(held.x_num[train], held.x_cat[train], outputs[train])
        at = np.searchsorted(rows, val)
        fresh = ~done[at]
        answer, found = member.answer(held.x_num[val], held.x_cat[val])
        answers[at[fresh]], has[at[fresh]] = answer[fresh], found[fresh]
        done[at] = True
    return answers, has


def choose_twins(held, network_proba, rows, stored_rows, task: str, n_classes: int):
    """(the twin member for ``stored_rows`` or None, what the choice saw, the held-out
    probabilities with the twins blended in) from the network's held-out probabilities
    ``network_proba`` on ``rows``."""
    outputs = as_outputs(held.y, task, n_classes)
    answers, has = held_out_twins(held, rows, outputs)
    choice = {"held_out_rows": len(rows), "with_twin": int(has.sum()), "weight": 0.0}
    if choice["with_twin"] < MIN_TWIN_ROWS:
        return None, choice, network_proba
    with_twins = np.where(has[:, None], answers, network_proba)
    y = held.y[rows]
    weight = float(select_ensemble([network_proba, with_twins], y, task)[1])
    blended = (1 - weight) * network_proba + weight * with_twins
    choice.update(
        weight=weight,
        network_log_loss=log_loss(y[has], network_proba[has], task),
        blend_log_loss=log_loss(y[has], blended[has], task),
    )
    if weight == 0:
        return None, choice, network_proba
    member = TwinMember.of_rows(
        held.x_num[stored_rows], held.x_cat[stored_rows], outputs[stored_rows], weight
    )
    choice["stored_rows"] = member.rows
    return member, choice, blended


def twins_info(estimator) -> dict | None:
    """The twin member's weight and what chose it, as stored under ``"twins"`` in
    ``tabnn.json``; None when the estimator had ``twins=False``."""
    choice = getattr(estimator, "twin_choice_", None)
    twins = getattr(estimator, "twins_", None)
    if choice is None and twins is None:
        return None
    return {"weight": 0.0 if twins is None else twins.weight, "choice": choice}
