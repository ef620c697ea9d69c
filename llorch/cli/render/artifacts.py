"""The `get artifacts` table, and what `artifact gc` removed."""

from __future__ import annotations

from collections.abc import Sequence

from llorch.cli.render.values import (
    NONE,
    Obj,
    age,
    dicts,
    human_size,
    integer,
    mapping_text,
    number,
    table,
    text,
)


def artifacts_table(items: Sequence[Obj], *, wide: bool = False, now: float) -> str:
    """IDs cut to 12 characters, as docker shows image ids; wide shows them whole (`artifact show`
    needs the whole id) and adds PARENT and METADATA."""
    headers = ["ID", "KIND", "SIZE", "TAGS", "AGE"]
    if wide:
        headers += ["PARENT", "METADATA"]
    rows = []
    for item in items:
        artifact_id = text(item.get("id"))
        created_ms = number(item.get("created_ms"))
        row = [
            artifact_id if wide else artifact_id[:12],
            text(item.get("kind")),
            human_size(item.get("size_bytes")),
            ",".join(map(str, item.get("tags") or [])) or NONE,
            age(None if created_ms is None else created_ms / 1000, now),
        ]
        if wide:
            row += [text(item.get("parent")), mapping_text(item.get("metadata"))]
        rows.append(row)
    return "\n".join(table(headers, rows))


def collected(answer: Obj) -> str:
    """`removed <id> (kind, size)` per artifact, then the total; `would remove` for a dry run."""
    verb = "would remove" if answer.get("dry_run") else "removed"
    removed = dicts(answer.get("removed"))
    lines = [
        f"{verb} {text(r.get('id'))} ({text(r.get('kind'))}, {human_size(r.get('size_bytes'))})"
        for r in removed
    ]
    lines.append(f"{verb} {len(removed)} artifact(s), {human_size(integer(answer.get('freed_bytes')))}")
    return "\n".join(lines)
