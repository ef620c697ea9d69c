"""Setting status conditions, Kubernetes style: the transition time moves only when status flips."""

from __future__ import annotations

import time

from llorch.resources.status import Condition, stamp


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str = "",
    *,
    now: float | None = None,
) -> list[Condition]:
    """`conditions` with `type_` set, in their order (a new type goes last)."""
    value = "True" if status else "False"
    moment = stamp(time.time() if now is None else now)
    result: list[Condition] = []
    found = False
    for known in conditions:
        if known.type != type_:
            result.append(known)
            continue
        found = True
        transition = known.last_transition_time if known.status == value else moment
        result.append(
            Condition(
                type=type_, status=value, reason=reason, message=message, last_transition_time=transition
            )
        )
    if not found:
        result.append(
            Condition(type=type_, status=value, reason=reason, message=message, last_transition_time=moment)
        )
    return result
