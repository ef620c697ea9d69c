"""The request's correlation id, carried to every log line of the work done for it."""

from __future__ import annotations

import contextvars

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
