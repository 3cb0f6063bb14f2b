"""One-line descriptions of what a fit chose beside the network: the twin member's weight,
the temperature and the decision threshold, as ``train`` and ``info`` print them."""

from __future__ import annotations


def twins_line(twins: dict | None, params: dict) -> str | None:
    """``twins_text``, or why there is no twin member (``params`` the estimator's); None
    for a model saved before twins existed."""
    if twins:
        return twins_text(twins)
    if params.get("twins") is False:
        return "twin rows: none stored (trained with --no-twins)"
    if params.get("twins"):
        return "twin rows: none (no held-out rows to weigh them on, or trained on a stream)"
    return None


def twins_text(twins: dict) -> str:
    """What the twin member earned, or that it earned nothing (``twins_info``'s dict)."""
    choice = twins.get("choice") or {}
    # validation rows, or a bag's out-of-fold rows
    seen = f"{choice.get('with_twin', 0):,} of {choice.get('held_out_rows', 0):,} held-out rows"
    if not twins.get("weight"):
        return f"twin rows: no weight ({seen} had a twin among the training rows)"
    return (
        f"twin rows: weight {twins['weight']:.2g} on {choice['stored_rows']:,} stored rows "
        f"(chosen on {seen} with a twin: log loss {choice['network_log_loss']:.3g} -> "
        f"{choice['blend_log_loss']:.3g})"
    )


def temperature_text(temperature: list, labels: list) -> str:
    """'temperature 1.31 (fitted on the validation rows)', or one per label."""
    if len(temperature) == 1:
        return f"temperature {temperature[0]:.3g} (fitted on the validation rows)"
    each = ", ".join(f"{label} {t:.3g}" for label, t in zip(labels, temperature))
    return f"temperatures per label {each} (fitted on the validation rows)"


def threshold_text(threshold: dict) -> str:
    """'0.37 chosen on 32 validation rows, maximising F1 (0.860)', or just '0.5'."""
    text = f"{threshold['value']:.4g}"
    tuning = threshold.get("tuning")
    if not tuning:
        return text
    from ..estimator.threshold import describe_threshold

    text += f" chosen on {tuning['rows']} validation rows"
    if tuning["members"] > 1 and tuning["members_per_row"] == tuning["members"]:
        text += f" (the {tuning['members']} members' mean probability)"
    elif tuning["members"] > 1:
        text += " (each scored by the members that held it out for validation)"
    return f"{text}, {describe_threshold(tuning)}"
