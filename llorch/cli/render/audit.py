"""The `llorchctl audit` table."""

from __future__ import annotations

from collections.abc import Sequence

from llorch.cli.render.values import Obj, age, table, text

_REASON_WIDTH = 60


def audit_table(items: Sequence[Obj], *, wide: bool = False, now: float) -> str:
    """Newest first, as llorchd answers; wide adds the correlation id, the exact time and the
    whole reason (cut to fit a line otherwise)."""
    headers = ["AGE", "ACTOR", "ACTION", "TARGET", "DECISION", "REASON"]
    if wide:
        headers += ["TIME", "CORRELATION ID"]
    rows = []
    for item in items:
        reason = text(item.get("reason"))
        if not wide and len(reason) > _REASON_WIDTH:
            reason = reason[: _REASON_WIDTH - 1] + "…"
        row = [
            age(item.get("at"), now),
            text(item.get("actor")),
            text(item.get("action")),
            text(item.get("target")),
            text(item.get("decision")),
            reason,
        ]
        if wide:
            row += [text(item.get("at")), text(item.get("correlation_id"))]
        rows.append(row)
    return "\n".join(table(headers, rows))
