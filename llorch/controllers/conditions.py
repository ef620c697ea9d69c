"""Status conditions, Kubernetes style: type, status, reason, message, lastTransitionTime."""

from __future__ import annotations

import time
from typing import Any

Conditions = list[dict[str, Any]]


def set_condition(
    conditions: Conditions,
    type_: str,
    status: bool,
    reason: str,
    message: str = "",
    *,
    now: float | None = None,
) -> Conditions:
    """Return `conditions` with `type_` set; the transition time only moves when the status flips."""
    value = "True" if status else "False"
    stamp = time.time() if now is None else now
    result: Conditions = []
    found = False
    for condition in conditions:
        if condition["type"] != type_:
            result.append(condition)
            continue
        found = True
        transition = condition["lastTransitionTime"] if condition["status"] == value else stamp
        result.append(_make(type_, value, reason, message, transition))
    if not found:
        result.append(_make(type_, value, reason, message, stamp))
    return result


def get_condition(conditions: Conditions, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c["type"] == type_), None)


def is_true(conditions: Conditions, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition["status"] == "True"


def _make(type_: str, status: str, reason: str, message: str, transition: float) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
