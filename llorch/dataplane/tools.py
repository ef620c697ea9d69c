"""HTTP tool calls for agents: the Policy bound to the pool decides, the outbound client makes the
call, the answer goes back with secrets redacted and the size cap applied, and every decision
lands in the audit trail."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.policies import policy_for
from llorch.dataplane.redact import Redactor, secrets_in
from llorch.dataplane.toolpolicy import ToolDenied, ToolGuard
from llorch.resources import Policy, Pool
from llorch.resources.errors import ErrorCode, LlorchError
from llorch.runtime.outbound.errors import InvalidUrl, UnsupportedScheme
from llorch.runtime.outbound.fetch import Fetched, OutboundClient, OutboundRequest
from llorch.store.audit import ALLOW, DENY, AuditLog
from llorch.store.manifests import ManifestStore

ACTION = "tool.http"
_USERINFO = re.compile(r"//[^/?#]*@")


@dataclass(frozen=True)
class ToolCall:
    request: OutboundRequest
    pool: str | None = None
    policy: str | None = None
    task_id: str | None = None
    session_id: str | None = None

    @property
    def on_behalf(self) -> str:
        """The task and session the agent made the call for, as the audit trail names them."""
        parts = [
            f"task {self.task_id}" if self.task_id else "",
            f"session {self.session_id}" if self.session_id else "",
        ]
        named = ", ".join(part for part in parts if part)
        return f" ({named})" if named else ""


@dataclass(frozen=True)
class ToolAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str
    truncated: bool
    url: str


class HttpTools:
    """`max_in_flight` bounds the calls running at once: each holds a request thread for up to
    its Policy's timeoutSeconds, and the control plane needs threads of its own."""

    def __init__(
        self, store: ManifestStore, audit: AuditLog, client: OutboundClient, *, max_in_flight: int
    ) -> None:
        self._store = store
        self._audit = audit
        self._client = client
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._max_in_flight = max_in_flight

    def call(self, call: ToolCall) -> ToolAnswer:
        policy = self._policy(call)
        guard = ToolGuard.of(policy, f"no Policy selects Pool/{call.pool}")
        rules = guard.rules
        redactor = Redactor(
            patterns=tuple(re.compile(p) for p in rules.redact) if rules else (),
            headers=frozenset(rules.redact_headers) if rules else frozenset(),
            secrets=tuple(secrets_in(call.request.headers)),
        )
        # What the audit trail names: the method and the URL without userinfo or query, redacted.
        bare_url = _USERINFO.sub("//", re.split(r"[?#]", call.request.url)[0])
        target = f"{call.request.method.upper()} {redactor.text(bare_url)}"
        try:
            fetched = self._fetch(call, guard)
        except UnsupportedScheme as exc:
            denied = ToolDenied(exc.message, guard.label(None))
            reason = f"{denied.policy_label}: {exc.message}{call.on_behalf}"
            self._audit.record(ACTION, target, decision=DENY, reason=reason)
            raise denied from exc
        except (ToolDenied, InvalidUrl) as exc:
            self._audit.record(
                ACTION, target, decision=DENY, reason=redactor.text(exc.message) + call.on_behalf
            )
            raise
        except LlorchError as exc:
            # Allowed, but it did not work out: the upstream, the deadline, too many calls at once.
            reason = f"allowed; {exc.code}: {redactor.text(exc.message)}{call.on_behalf}"
            self._audit.record(ACTION, target, decision=ALLOW, reason=reason)
            raise
        label = guard.allowed_label(fetched.method, fetched.url)
        self._audit.record(
            ACTION, target, decision=ALLOW, reason=f"{label} -> {fetched.status}{call.on_behalf}"
        )
        return ToolAnswer(
            status=fetched.status,
            headers=tuple(redactor.header_list(fetched.headers)),
            body=redactor.text(fetched.body.decode("utf-8", errors="replace")),
            truncated=fetched.truncated,
            url=redactor.text(str(fetched.url)),
        )

    def _fetch(self, call: ToolCall, guard: ToolGuard) -> Fetched:
        rules = guard.rules
        request = call.request
        if rules is None:
            # Nothing can be allowed: the guard refuses the first hop, before any connection.
            return self._client.fetch(request, guard, max_bytes=1, timeout_seconds=1)
        if not self._slots.acquire(blocking=False):
            raise DataplaneError(
                ErrorCode.ADMISSION_REJECT,
                f"{self._max_in_flight} HTTP tool calls are running already; try again shortly",
                retry_after_ms=1000,
            )
        try:
            return self._client.fetch(
                request, guard, max_bytes=rules.max_response_bytes, timeout_seconds=rules.timeout_seconds
            )
        finally:
            self._slots.release()

    def _policy(self, call: ToolCall) -> Policy | None:
        if call.policy is not None:
            entry = self._store.get(f"Policy/{call.policy}")
            if entry is None or not isinstance(entry.obj, Policy):
                raise DataplaneError(ErrorCode.NOT_FOUND, f"no Policy/{call.policy}")
            return entry.obj
        entry = self._store.get(f"Pool/{call.pool}")
        if entry is None or not isinstance(entry.obj, Pool):
            raise DataplaneError(ErrorCode.NOT_FOUND, f"no Pool/{call.pool}")
        return policy_for(self._store, entry.obj)
