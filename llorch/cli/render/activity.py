"""What happens over time: events as `kubectl get events` lists them, the tasks waiting in the
queue, and the lines `-w` adds as changes come."""

from __future__ import annotations

from collections.abc import Sequence

from llorch.cli.render import values
from llorch.cli.render.values import Obj, age, human_duration, table, text
from llorch.resources.status import EventView

EVENT_HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
QUEUE_HEADERS = ["POOL", "POS", "TASK", "PRIORITY", "STARTS IN", "AGE", "SESSION"]


def events_of(items: Sequence[Obj]) -> list[EventView]:
    """Events of a list or a watch; one that does not validate is left out."""
    return values.events_of({"events": list(items)})


def event_row(event: EventView, now: float) -> list[str]:
    seen = age(event.last_timestamp, now)
    if event.count > 1:
        seen += f" (x{event.count})"
    return [seen, event.type, text(event.reason), text(event.object), text(event.message)]


def events_table(events: Sequence[EventView], now: float) -> str:
    return "\n".join(table(EVENT_HEADERS, [event_row(e, now) for e in events]))


def queue_row(item: Obj) -> list[str]:
    predicted = item.get("predicted_start_ms")
    waited = item.get("age_ms")
    return [
        text(item.get("pool")),
        text(item.get("position")),
        text(item.get("task_id")),
        text(item.get("priority")),
        starts_in(predicted),
        human_duration(waited / 1000) if isinstance(waited, int | float) else "?",
        text(item.get("session_id")),
    ]


def starts_in(predicted_ms: object) -> str:
    """`~4m`, `~12s`, `now`: a prediction, shown no finer than it is good for."""
    if not isinstance(predicted_ms, int | float):
        return "?"
    return "now" if predicted_ms < 1000 else f"~{human_duration(predicted_ms / 1000)}"


def queue_table(items: Sequence[Obj]) -> str:
    return "\n".join(table(QUEUE_HEADERS, [queue_row(i) for i in items]))


def defaulted_replica(chosen: str, replicas: Sequence[str]) -> str:
    """kubectl's note when a pod has several containers and none was named."""
    return f'Defaulted replica "{chosen}" out of: {", ".join(replicas)}'
