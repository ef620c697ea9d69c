"""The audit trail: every policy decision and control action, with who made it, in sqlite.

Call sites are one line: `audit.record("pool.drain", "Pool/chat", reason="deadline 60000 ms")`.
Who acted and under which correlation id come from `acting`, which the API sets for the request
it is serving; work no request asked for is recorded as `system`. Nothing recorded here may be a
secret: identities are key names or hash prefixes, targets are object keys or URLs without their
query, and reasons are written by llorch, never copied from a request.
"""

from __future__ import annotations

import contextvars
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

Decision = Literal["allow", "deny"]
ALLOW: Final = "allow"
DENY: Final = "deny"

# Past this many entries the oldest go, so a flood of refused requests cannot fill the disk.
KEEP_ENTRIES = 200_000
_PRUNE_EVERY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL,
    correlation_id TEXT, action TEXT NOT NULL, target TEXT NOT NULL, decision TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_at ON audit (at);
"""


@dataclass(frozen=True)
class Actor:
    """Who a request acts as (`token:<name>`, `token:<first 6 of sha256>`, `oidc:<sub>`,
    `anonymous`), and the request's correlation id."""

    identity: str
    correlation_id: str | None = None


SYSTEM = Actor("system")
acting: contextvars.ContextVar[Actor] = contextvars.ContextVar("acting", default=SYSTEM)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    actor: str
    correlation_id: str | None
    action: str
    target: str
    decision: str
    reason: str

    def to_wire(self) -> dict[str, Any]:
        at = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "id": self.id,
            "at": at,
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "action": self.action,
            "target": self.target,
            "decision": self.decision,
            "reason": self.reason,
        }


class AuditLog:
    """Its own connection to the state database (WAL lets it write beside StateDB's), so the
    trail is one table with one owner."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._writes = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, action: str, target: str, *, decision: Decision = ALLOW, reason: str = "") -> None:
        actor = acting.get()
        with self._lock:
            self._conn.execute(
                "INSERT INTO audit (at, actor, correlation_id, action, target, decision, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), actor.identity, actor.correlation_id, action, target, decision, reason),
            )
            self._writes += 1
            if self._writes % _PRUNE_EVERY == 0:
                self._conn.execute(
                    "DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (KEEP_ENTRIES,)
                )

    def record_each(self, action: str, targets: list[tuple[str, str]]) -> None:
        """One allowed entry per (target, reason)."""
        for target, reason in targets:
            self.record(action, target, reason=reason)

    def entries(
        self,
        *,
        since: float | None = None,
        decision: Decision | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("at >= ?", since), ("decision = ?", decision), ("actor = ?", actor)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, at, actor, correlation_id, action, target, decision, reason FROM audit"
                f"{where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [AuditEntry(*row) for row in rows]
