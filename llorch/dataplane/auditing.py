"""Admission's policy refusals in the audit trail: a full queue (reject, drop-lru) and a session
over its budget. One decorator on `TaskService.submit`, so the data plane's code is untouched."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from llorch.dataplane.errors import DataplaneError
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode
from llorch.store.audit import DENY, AuditLog

_ACTIONS = {
    ErrorCode.ADMISSION_REJECT: "task.admit",
    ErrorCode.QUEUE_FULL_DROP_LRU: "task.admit",
    ErrorCode.BUDGET_EXCEEDED: "session.budget",
}


class Audited(Protocol):
    audit: AuditLog | None


S = TypeVar("S", bound=Audited)
P = ParamSpec("P")
R = TypeVar("R")


def audits_refusals(submit: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """`submit` takes the Pool as the keyword `pool` and the session as `session_id`."""

    @functools.wraps(submit)
    def audited(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return submit(self, *args, **kwargs)
        except DataplaneError as exc:
            action = _ACTIONS.get(exc.code)
            pool = kwargs.get("pool")
            if self.audit is not None and action is not None and isinstance(pool, Pool):
                session = kwargs.get("session_id")
                target = f"Session/{session}" if action == "session.budget" else f"Pool/{pool.metadata.name}"
                label = f" ({exc.policy_label})" if exc.policy_label else ""
                self.audit.record(action, target, decision=DENY, reason=f"{exc.code}{label}: {exc.message}")
            raise

    return audited
