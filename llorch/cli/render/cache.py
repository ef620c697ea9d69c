"""`cache ls`, what `cache prune` removed, and the progress line of `pull`."""

from __future__ import annotations

from llorch.cli.render.values import NONE, Obj, age, dicts, human_size, integer, table, text


def cache_table(answer: Obj, *, now: float) -> str:
    """Least recently used first: the order prune removes in."""
    rows = [
        [
            text(e.get("name")),
            human_size(e.get("size_bytes")),
            age(e.get("last_used"), now),
            ",".join(map(str, e.get("models") or [])) or NONE,
            text(e.get("state")),
            "yes" if e.get("removable") else "no",
        ]
        for e in dicts(answer.get("entries"))
    ]
    limit = answer.get("max_bytes")
    total = f"total {human_size(integer(answer.get('total_bytes')))}"
    total += f" of cache.maxBytes {human_size(limit)}" if isinstance(limit, int) else " (no cache.maxBytes)"
    headers = ["ENTRY", "SIZE", "LAST-USED", "MODELS", "STATE", "REMOVABLE"]
    return "\n".join([*(table(headers, rows) if rows else ["No cached weights."]), total])


def pruned(answer: Obj) -> str:
    verb = "would remove" if answer.get("dry_run") else "removed"
    removed = dicts(answer.get("removed"))
    lines = [f"{verb} {text(e.get('name'))} ({human_size(e.get('size_bytes'))})" for e in removed]
    freed = human_size(integer(answer.get("freed_bytes")))
    lines.append(f"{verb} {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, {freed}")
    return "\n".join(lines)


BAR_WIDTH = 30


def progress_line(name: str, done: int, total: int | None, rate: float | None) -> str:
    """`model/x [#########.....]  42%  1.4GiB/3.3GiB  88.0MiB/s`."""
    speed = f"  {human_size(rate)}/s" if rate is not None else ""
    if not total:
        return f"model/{name} {human_size(done)}{speed}"
    share = min(1.0, done / total)
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"model/{name} [{bar}] {int(share * 100):3d}%  {human_size(done)}/{human_size(total)}{speed}"
