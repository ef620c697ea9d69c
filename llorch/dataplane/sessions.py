"""Sessions: a conversation's turns and its token, wall-time and cost budgets, kept in sqlite.

The TTL slides: each turn pushes expiry out by the Policy's ttlSeconds. A session past its
expiry is gone, and the same id starts a fresh one. Budgets count prompt and output tokens
of every finished turn; the cost is tokens / 1000 x the pool's costPer1kTokens.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.policies import rule_label
from llorch.resources import Policy
from llorch.resources.errors import ErrorCode
from llorch.store.db import StateDB

DEFAULT_TTL_SECONDS = 600.0
DEFAULT_MAX_TURNS = 8


@dataclass
class Session:
    id: str
    pool: str
    created_at: float
    expires_at: float
    ttl_seconds: float
    max_turns: int
    turns: int = 0
    tokens_used: int = 0
    time_used_ms: float = 0.0
    cost_used: float = 0.0
    budget_tokens: int | None = None
    budget_time_ms: float | None = None
    budget_cost: float | None = None
    correlation_id: str | None = None

    def tokens_remaining(self) -> int | None:
        return None if self.budget_tokens is None else max(0, self.budget_tokens - self.tokens_used)

    def time_remaining_ms(self) -> float | None:
        return None if self.budget_time_ms is None else max(0.0, self.budget_time_ms - self.time_used_ms)

    def cost_remaining(self) -> float | None:
        return None if self.budget_cost is None else max(0.0, round(self.budget_cost - self.cost_used, 6))

    def view(self, now: float) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "pool": self.pool,
            "ttl_ms_remaining": max(0, int((self.expires_at - now) * 1000)),
            "expires_ms": int(self.expires_at * 1000),
            "turns": self.turns,
            "max_turns": self.max_turns,
            "tokens_used": self.tokens_used,
            "time_used_ms": round(self.time_used_ms, 1),
            "cost_used": round(self.cost_used, 6),
            "tokens_budget_remaining": self.tokens_remaining(),
            "time_budget_remaining_ms": self.time_remaining_ms(),
            "cost_budget_remaining": self.cost_remaining(),
            # The KV cache belongs to the engine's slot and is reused through prompt caching;
            # llorch does not pin a slot to a session, so it reports no bytes it cannot vouch for.
            "kv_bytes": 0,
            "kv_warmth": False,
        }


class SessionStore:
    def __init__(self, db: StateDB) -> None:
        self._db = db
        self._lock = threading.Lock()

    def get(self, session_id: str, now: float | None = None) -> Session | None:
        now = time.time() if now is None else now
        body = self._db.get_session(session_id)
        if body is None:
            return None
        session = Session(**body)
        if session.expires_at <= now:
            self._db.delete_session(session_id)
            return None
        return session

    def delete(self, session_id: str) -> None:
        self._db.delete_session(session_id)

    def open(self, session_id: str, pool: str, policy: Policy | None, correlation_id: str | None) -> Session:
        """The live session, or a new one with the Policy's TTL, turn limit and budgets."""
        with self._lock:
            now = time.time()
            session = self.get(session_id, now)
            if session is not None:
                return session
            ttl = policy.spec.sessions.ttl_seconds if policy is not None else DEFAULT_TTL_SECONDS
            budgets = policy.spec.budgets if policy is not None else None
            session = Session(
                id=session_id,
                pool=pool,
                created_at=now,
                expires_at=now + ttl,
                ttl_seconds=ttl,
                max_turns=policy.spec.sessions.max_turns if policy is not None else DEFAULT_MAX_TURNS,
                budget_tokens=budgets.tokens if budgets is not None else None,
                budget_time_ms=budgets.wall_time_seconds * 1000
                if budgets is not None and budgets.wall_time_seconds is not None
                else None,
                budget_cost=budgets.cost if budgets is not None else None,
                correlation_id=correlation_id,
            )
            self._save(session)
            return session

    def check(self, session: Session, policy: Policy | None) -> None:
        """Refuse a turn up front when it cannot fit: 429 BUDGET_EXCEEDED, retry once the session
        expires; `policy_label` names the Policy and each of its rules that refused."""
        retry = max(0, int((session.expires_at - time.time()) * 1000))
        problems: list[tuple[str, str]] = []
        if session.turns >= session.max_turns:
            problems.append(("sessions.maxTurns", f"it has had its {session.max_turns} turns"))
        if session.tokens_remaining() == 0:
            problems.append(("budgets.tokens", f"its token budget of {session.budget_tokens} is spent"))
        if session.time_remaining_ms() == 0:
            problems.append(
                (
                    "budgets.wallTimeSeconds",
                    f"its wall-time budget of {session.budget_time_ms:.0f} ms is spent",
                )
            )
        if session.cost_remaining() == 0:
            problems.append(("budgets.cost", f"its cost budget of {session.budget_cost} is spent"))
        if problems:
            raise DataplaneError(
                ErrorCode.BUDGET_EXCEEDED,
                f"session {session.id!r} cannot take another turn: " + "; ".join(p for _, p in problems),
                retriable=True,
                retry_after_ms=retry,
                policy_label=rule_label(policy, session.pool, [rule for rule, _ in problems]),
            )

    def charge(self, session_id: str, *, tokens: int, wall_ms: float, cost_per_1k: float) -> None:
        """A turn finished: count it and slide the expiry."""
        with self._lock:
            now = time.time()
            session = self.get(session_id, now)
            if session is None:
                return
            session.turns += 1
            session.tokens_used += tokens
            session.time_used_ms += wall_ms
            session.cost_used += tokens / 1000 * cost_per_1k
            session.expires_at = now + session.ttl_seconds
            self._save(session)

    def _save(self, session: Session) -> None:
        self._db.put_session(session.id, asdict(session), session.expires_at)
