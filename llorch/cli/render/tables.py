"""The `get` tables of the kinds (Pool, Model, Policy), and the warning about broken manifests under them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llorch.cli.render.values import (
    NONE,
    UNKNOWN,
    Obj,
    condition_of,
    dicts,
    error_line,
    human_duration,
    human_size,
    integer,
    is_true,
    name_of,
    spec_of,
    status_of,
    sub,
    table,
    text,
    timestamp,
)


def pool_status(obj: Obj) -> str:
    """The STATUS column: the most urgent thing first, as kubectl shows CrashLoopBackOff over Running."""
    status = status_of(obj)
    if obj.get("errors"):
        return "ManifestError"
    if status.get("draining") is True:
        # Asked for by a person, so it outranks whatever the stopping replicas look like.
        return "Drained" if integer(status.get("readyReplicas")) == 0 else "Draining"
    if status.get("blockedBy"):
        return str(status["blockedBy"])
    degraded = condition_of(status, "Degraded")
    if is_true(degraded):
        return str((degraded or {}).get("reason") or "Degraded")
    if is_true(condition_of(status, "Ready")):
        return "Ready"
    return "Progressing"


def pool_message(obj: Obj) -> str:
    errors = dicts(obj.get("errors"))
    if errors:
        return error_line(errors[0])
    status = status_of(obj)
    for kind, wanted in (("Degraded", "True"), ("Ready", "False"), ("Progressing", "True")):
        condition = condition_of(status, kind)
        if condition is not None and condition.get("status") == wanted and condition.get("message"):
            return str(condition["message"])
    return ""


def pool_age(obj: Obj, now: float) -> str:
    status = status_of(obj)
    moments = [c.get("lastTransitionTime") for c in dicts(status.get("conditions"))]
    moments += [r.get("startedAt") for r in dicts(status.get("replicaStatuses"))]
    known = [t for t in map(timestamp, moments) if t is not None]
    return human_duration(now - min(known)) if known else UNKNOWN


def _pool_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    desired = status.get("replicas", spec.get("replicas"))
    total, busy = integer(status.get("slotsTotal")), integer(status.get("slotsBusy"))
    row = [
        name_of(obj),
        text(spec.get("model")),
        text(spec.get("engine")),
        f"{integer(status.get('readyReplicas'))}/{integer(desired)}",
        f"{total - busy}/{total}",
        pool_status(obj),
        pool_age(obj, now),
    ]
    if wide:
        replicas = dicts(status.get("replicaStatuses"))
        ports = [str(r["port"]) for r in replicas if r.get("port") is not None]
        row += [
            ",".join(ports) or NONE,
            str(sum(integer(r.get("restarts")) for r in replicas)),
            pool_message(obj),
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


def download_progress(status: Obj) -> str | None:
    """`42% (1.4GiB/3.3GiB, 88.0MiB/s)` while the weights download, else None."""
    done = status.get("downloadedBytes")
    if not isinstance(done, int):
        return None
    total = status.get("totalBytes")
    rate = status.get("bytesPerSecond")
    speed = f", {human_size(rate)}/s" if isinstance(rate, int | float) else ""
    if isinstance(total, int) and total > 0:
        return f"{min(100, done * 100 // total)}% ({human_size(done)}/{human_size(total)}{speed})"
    return f"{human_size(done)}{speed}"


def _ready(status: Obj) -> str:
    progress = download_progress(status)
    if progress is not None:
        return f"Downloading {progress.split(' ', 1)[0]}"
    ready = condition_of(status, "Ready")
    return str(ready.get("status", "Unknown")) if ready is not None else "Unknown"


def _model_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    return [
        name_of(obj),
        model_source(spec),
        text(spec.get("format")),
        text(status.get("lifecycle") or spec.get("lifecycle")),
        _ready(status),
        human_size(status.get("sizeBytes")),
        short_digest(status.get("digest") or spec.get("digest"), status.get("digestVerified") is True),
        text(status.get("trust")),
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


def object_table(kind: str, items: Sequence[Obj], *, wide: bool = False, now: float) -> str:
    headers, wide_headers, row = _COLUMNS[kind]
    if wide:
        headers = headers + wide_headers
    return "\n".join(table(headers, [row(obj, wide, now) for obj in items]))


def manifest_warning(errors: Sequence[Obj]) -> list[str]:
    """Lines for stderr after a table; none when every manifest is fine."""
    if not errors:
        return []
    lines = ["warning: manifest errors (last good versions keep running):"]
    lines += ["  " + error_line(e) for e in dicts(errors)]
    return lines
