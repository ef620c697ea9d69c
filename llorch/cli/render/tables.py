"""The `get` tables of the kinds (Pool, Model, Policy), and the warning about broken manifests under them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llorch.cli.render.values import (
    NONE,
    UNKNOWN,
    Obj,
    dicts,
    error_line,
    follow_row,
    human_duration,
    human_size,
    integer,
    model_status,
    name_of,
    pool_status,
    spec_of,
    sub,
    table,
    text,
    timestamp,
    was_sent,
)
from llorch.resources.status import ModelStatus, PoolStatus, condition


def status_cell(status: PoolStatus, errors: list[Obj]) -> str:
    """The STATUS column: the most urgent thing first, as kubectl shows CrashLoopBackOff over Running."""
    return "ManifestError" if errors else status.state


def message_cell(status: PoolStatus, errors: list[Obj]) -> str:
    if errors:
        return error_line(errors[0])
    for kind, wanted in (("Degraded", "True"), ("Ready", "False"), ("Progressing", "True")):
        found = condition(status.conditions, kind)
        if found is not None and found.status == wanted and found.message:
            return found.message
    return ""


def pool_age(status: PoolStatus, now: float) -> str:
    """The oldest moment the status knows: a condition's last transition or a replica's start."""
    moments = [c.last_transition_time for c in status.conditions]
    moments += [r.started_at for r in status.replica_statuses if r.started_at is not None]
    known = [t for t in map(timestamp, moments) if t is not None]
    return human_duration(now - min(known)) if known else UNKNOWN


def desired_replicas(status: PoolStatus, spec: Obj) -> int:
    """What status says is wanted; the spec's count for a pool whose status never said."""
    return status.replicas if was_sent(status, "replicas") else integer(spec.get("replicas"))


def _pool_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status, errors = spec_of(obj), pool_status(obj), dicts(obj.get("errors"))
    total, busy = status.slots_total, status.slots_busy or 0
    row = [
        name_of(obj),
        text(spec.get("model")),
        text(spec.get("engine")),
        f"{status.ready_replicas}/{desired_replicas(status, spec)}",
        f"{total - busy}/{total}",
        status_cell(status, errors),
        pool_age(status, now),
    ]
    if wide:
        replicas = status.replica_statuses
        ports = [str(r.port) for r in replicas if r.port is not None]
        row += [
            ",".join(ports) or NONE,
            str(sum(r.restarts for r in replicas)),
            message_cell(status, errors),
        ]
    return row


def model_source(spec: Obj) -> str:
    source = spec.get("source")
    if not isinstance(source, dict):
        return NONE
    if source.get("builtin"):
        return f"builtin:{source['builtin']}"
    return text(source.get("path") or source.get("url"))


def short_digest(digest: Any, verified: bool) -> str:
    if not isinstance(digest, str) or not digest:
        return NONE
    algorithm, _, hexdigest = digest.partition(":")
    short = f"{algorithm}:{hexdigest[:8]}" if hexdigest else digest[:15]
    return short + ("✓" if verified else "")


def download_progress(status: ModelStatus) -> str | None:
    """`42% (1.4GiB/3.3GiB, 88.0MiB/s)` while the weights download, else None."""
    done = status.downloaded_bytes
    if done is None:
        return None
    total = status.total_bytes
    rate = status.bytes_per_second
    speed = f", {human_size(rate)}/s" if rate is not None else ""
    if total:
        return f"{min(100, done * 100 // total)}% ({human_size(done)}/{human_size(total)}{speed})"
    return f"{human_size(done)}{speed}"


def _ready(status: ModelStatus) -> str:
    progress = download_progress(status)
    if progress is not None:
        return f"Downloading {progress.split(' ', 1)[0]}"
    ready = condition(status.conditions, "Ready")
    return ready.status if ready is not None else "Unknown"


def _model_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status = spec_of(obj), model_status(obj)
    return [
        name_of(obj),
        model_source(spec),
        text(spec.get("format")),
        text(status.lifecycle or spec.get("lifecycle")),
        _ready(status),
        human_size(status.size_bytes),
        short_digest(status.digest or spec.get("digest"), status.digest_verified is True),
        text(status.trust),
    ]


def selector_text(spec: Obj) -> str:
    selector = spec.get("selector")
    labels = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not isinstance(labels, dict) or not labels:
        return "<all>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _policy_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec = spec_of(obj)
    admission, sessions = sub(spec, "admission"), sub(spec, "sessions")
    ttl = sessions.get("ttlSeconds")
    ttl_text = human_duration(ttl) if isinstance(ttl, int | float) else "?"
    return [
        name_of(obj),
        selector_text(spec),
        f"{text(admission.get('queueCapacity'))}/{text(admission.get('overflow'))}",
        f"{ttl_text}/{text(sessions.get('maxTurns'))}",
    ]


_Row = Callable[[Obj, bool, float], list[str]]


_COLUMNS: dict[str, tuple[list[str], list[str], _Row]] = {
    "Pool": (
        ["NAME", "MODEL", "ENGINE", "READY", "SLOTS", "STATUS", "AGE"],
        ["PORTS", "RESTARTS", "MESSAGE"],
        _pool_row,
    ),
    "Model": (["NAME", "SOURCE", "FORMAT", "LIFECYCLE", "READY", "SIZE", "DIGEST", "TRUST"], [], _model_row),
    "Policy": (["NAME", "SELECTOR", "QUEUE", "SESSIONS"], [], _policy_row),
}


def _headers(kind: str, wide: bool) -> list[str]:
    headers, wide_headers, _ = _COLUMNS[kind]
    return headers + wide_headers if wide else headers


def object_table(kind: str, items: Sequence[Obj], *, wide: bool = False, now: float) -> str:
    row = _COLUMNS[kind][2]
    return "\n".join(table(_headers(kind, wide), [row(obj, wide, now) for obj in items]))


def object_line(kind: str, obj: Obj, *, wide: bool = False, now: float) -> str:
    """One more row under a table of `kind` already printed (`get -w`), with no header."""
    row = _COLUMNS[kind][2]
    return follow_row(_headers(kind, wide), row(obj, wide, now))


def manifest_warning(errors: Sequence[Obj]) -> list[str]:
    """Lines for stderr after a table; none when every manifest is fine."""
    if not errors:
        return []
    lines = ["warning: manifest errors (last good versions keep running):"]
    lines += ["  " + error_line(e) for e in dicts(errors)]
    return lines
