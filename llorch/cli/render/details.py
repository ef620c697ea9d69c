"""`describe`: one object as kubectl describe shows it, spec, status, conditions, replicas, events."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from llorch.cli.render.tables import model_source, selector_text
from llorch.cli.render.values import (
    NONE,
    Obj,
    age,
    dicts,
    error_line,
    fields,
    gpu_list,
    human_duration,
    human_size,
    integer,
    mapping_text,
    name_of,
    section,
    spec_of,
    status_of,
    sub,
    table,
    text,
    timestamp,
    where,
)

LOG_TAIL_LINES = 20


def _header(obj: Obj) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    source = obj.get("source") if isinstance(obj.get("source"), dict) else {}
    place = where(source.get("file"), source.get("line")) if source else NONE
    return fields(
        [
            ("Name", name_of(obj)),
            ("Kind", text(obj.get("kind"))),
            ("Labels", mapping_text((meta or {}).get("labels"))),
            ("Annotations", mapping_text((meta or {}).get("annotations"))),
            ("Source", place),
        ]
    )


def gpus_text(gpus: Any) -> str:
    if not isinstance(gpus, dict) or not gpus.get("count"):
        return "none (CPU)"
    parts = [f"{gpus['count']} per replica"]
    if gpus.get("vramMiB"):
        parts.append(f"{gpus['vramMiB']} MiB VRAM")
    if gpus.get("devices"):
        parts.append("pinned to " + ",".join(str(d) for d in gpus["devices"]))
    if gpus["count"] > 1 and gpus.get("split"):
        parts.append(f"split {gpus['split']}")
    if gpus.get("layers") is not None:
        parts.append(f"{gpus['layers']} layers offloaded")
    return ", ".join(parts)


def drain_text(deadline: Any, now: float) -> str:
    """`yes (deadline in 45s)`, `yes (deadline passed 3s ago)`; the deadline is unix seconds."""
    at = timestamp(deadline)
    if at is None:
        return "yes"
    if at >= now:
        return f"yes (deadline in {human_duration(at - now)})"
    return f"yes (deadline passed {human_duration(now - at)} ago)"


def _context_text(spec: Obj, status: Obj) -> str:
    line = f"{text(spec.get('context'))} tokens per slot"
    given = [c for r in status.get("replicaStatuses") or [] if isinstance(c := r.get("context"), int)]
    if given and min(given) < integer(spec.get("context")):
        line += f" (the engine gives {min(given)})"
    return line


def _pool_body(obj: Obj, now: float) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    endpoint = sub(spec, "endpoint")
    pairs = [
        ("Model", text(spec.get("model"))),
        ("Engine", text(spec.get("engine"))),
        ("Replicas", text(spec.get("replicas"))),
        ("Slots", f"{text(spec.get('slots'))} per replica"),
        ("Context", _context_text(spec, status)),
        ("GPUs", gpus_text(spec.get("gpus"))),
        ("Engine Args", shlex.join(map(str, spec.get("engineArgs") or [])) or NONE),
    ]
    if endpoint:
        pairs.append(("Endpoint", text(endpoint.get("url"))))
    pairs.append(("Startup Timeout", f"{text(spec.get('startupTimeoutSeconds'))}s"))
    if spec.get("costPer1kTokens"):
        pairs.append(("Cost per 1k Tokens", text(spec["costPer1kTokens"])))
    total, busy = integer(status.get("slotsTotal")), integer(status.get("slotsBusy"))
    state = [
        (
            "Ready",
            f"{integer(status.get('readyReplicas'))}/{integer(status.get('replicas', spec.get('replicas')))}",
        ),
        ("Slots", f"{total - busy} free of {total}"),
    ]
    if status.get("blockedBy"):
        state.append(("Blocked By", str(status["blockedBy"])))
    if status.get("vramEstimate"):
        state.append(("VRAM estimate", text(status["vramEstimate"])))
    if status.get("draining") is True:
        state.append(("Draining", drain_text(status.get("drainDeadline"), now)))
    rollout = sub(status, "rollout")
    if rollout.get("failedRevision"):
        failed = f"failed revision {rollout['failedRevision']}"
        state.append(("Rollout", f"{failed}: {rollout['message']}" if rollout.get("message") else failed))
    state.append(("Observed Generation", text(status.get("observedGeneration"))))
    lines = ["Spec:", *fields(pairs, "  "), "Status:", *fields(state, "  ")]
    lines += _conditions(status, now)
    replicas = dicts(status.get("replicaStatuses"))
    rows = [
        [
            text(r.get("id")),
            text(r.get("phase")),
            gpu_list(r.get("gpus")),
            text(r.get("pid")),
            text(r.get("port")),
            str(integer(r.get("restarts"))),
            text(r.get("lastExit")),
            text(r.get("lastError")),
        ]
        for r in replicas
    ]
    headers = ["ID", "PHASE", "GPUS", "PID", "PORT", "RESTARTS", "LAST-EXIT", "LAST-ERROR"]
    lines += section("Replicas", table(headers, rows, "  ") if rows else [])
    lines += [
        f"  {text(r.get('id'))} pending: {text(r['reason'])}"
        for r in replicas
        if str(r.get("phase")).lower() == "pending" and r.get("reason")
    ]
    for replica in replicas:
        lines += _log_tail(replica)
    return lines


def _crashing(replica: Obj) -> bool:
    phase = replica.get("phase")
    return phase == "BackOff" or (phase != "Ready" and bool(replica.get("lastError")))


def _log_tail(replica: Obj) -> list[str]:
    tail = [str(line) for line in replica.get("logTail") or []][-LOG_TAIL_LINES:]
    if not _crashing(replica) or not tail:
        return []
    where = f" ({replica['logPath']})" if replica.get("logPath") else ""
    return [f"Last log lines of {text(replica.get('id'))}{where}:", *(f"  {line}" for line in tail)]


def _model_body(obj: Obj, now: float) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    pairs = [
        ("Source", model_source(spec)),
        ("Format", text(spec.get("format"))),
        ("Digest", text(spec.get("digest"))),
        ("Lifecycle", text(spec.get("lifecycle"))),
    ]
    pairs += [
        (label, text(spec[key]))
        for label, key in (("Signature", "signature"), ("SBOM", "sbom"))
        if spec.get(key)
    ]
    digest = text(status.get("digest"))
    if status.get("digest"):
        digest += " (verified)" if status.get("digestVerified") is True else " (not verified)"
    trust = text(status.get("trust"))
    if status.get("trustWarning"):
        trust += f" ({status['trustWarning']})"
    state = [
        ("Lifecycle", text(status.get("lifecycle"))),
        ("Resolved Path", text(status.get("resolvedPath"))),
        ("Size", human_size(status.get("sizeBytes"))),
        ("Digest", digest),
        ("Trust", trust),
        ("Observed Generation", text(status.get("observedGeneration"))),
    ]
    return ["Spec:", *fields(pairs, "  "), "Status:", *fields(state, "  "), *_conditions(status, now)]


def _policy_body(obj: Obj, now: float) -> list[str]:
    spec, status = spec_of(obj), status_of(obj)
    admission, sessions = sub(spec, "admission"), sub(spec, "sessions")
    tools = sub(spec, "httpTools")
    ttl = sessions.get("ttlSeconds")
    pairs = [
        ("Selector", selector_text(spec)),
        ("Queue Capacity", text(admission.get("queueCapacity"))),
        ("Overflow", text(admission.get("overflow"))),
        ("Priorities", ",".join(map(str, admission.get("priorities") or [])) or NONE),
        ("Budgets", mapping_text({k: v for k, v in sub(spec, "budgets").items() if v is not None})),
        ("Session TTL", human_duration(ttl) if isinstance(ttl, int | float) else NONE),
        ("Session Max Turns", text(sessions.get("maxTurns"))),
        ("Determinism", text(sub(spec, "determinism").get("default"))),
        ("HTTP Tools Allow", "; ".join(map(host_rule_text, dicts(tools.get("allow")))) or NONE),
        ("HTTP Tools Deny", "; ".join(map(host_rule_text, dicts(tools.get("deny")))) or NONE),
        ("HTTP Tools Redact", ",".join(map(str, tools.get("redact") or [])) or NONE),
    ]
    state = [(key, text(value)) for key, value in status.items() if key != "conditions"]
    lines = ["Spec:", *fields(pairs, "  "), *section("Status", fields(state, "  ") if state else [])]
    return lines + (_conditions(status, now) if "conditions" in status else [])


def host_rule_text(rule: Obj) -> str:
    """`github: GET api.github.com https:443`: what a rule covers, unset parts left out."""
    methods = ",".join(map(str, rule.get("methods") or []))
    schemes = ",".join(map(str, rule.get("schemes") or []))
    ports = ",".join(map(str, rule.get("ports") or []))
    where = f"{schemes}:{ports}" if schemes and ports else schemes or (f":{ports}" if ports else "")
    words = [methods, text(rule.get("host")), where]
    body = " ".join(word for word in words if word)
    return f"{rule['name']}: {body}" if rule.get("name") else body


def _conditions(status: Obj, now: float) -> list[str]:
    rows = [
        [
            text(c.get("type")),
            text(c.get("status")),
            text(c.get("reason")),
            text(c.get("message")),
            age(c.get("lastTransitionTime"), now),
        ]
        for c in dicts(status.get("conditions"))
    ]
    return section(
        "Conditions", table(["TYPE", "STATUS", "REASON", "MESSAGE", "AGE"], rows, "  ") if rows else []
    )


def _event_age(event: Obj, now: float) -> str:
    count = integer(event.get("count"))
    if count > 1:
        return (
            f"{age(event.get('lastTimestamp'), now)} (x{count} over {age(event.get('firstTimestamp'), now)})"
        )
    return age(event.get("lastTimestamp") or event.get("firstTimestamp"), now)


def _events(obj: Obj, now: float) -> list[str]:
    rows = [
        [text(e.get("type")), text(e.get("reason")), _event_age(e, now), text(e.get("message"))]
        for e in dicts(obj.get("events"))
    ]
    return section("Events", table(["TYPE", "REASON", "AGE", "MESSAGE"], rows, "  ") if rows else [])


def _errors(obj: Obj) -> list[str]:
    errors = dicts(obj.get("errors"))
    if not errors:
        return []
    lines = ["Manifest Errors:  (the last good version keeps running)"]
    return lines + ["  " + error_line(e) for e in errors]


_BODIES: dict[str, Callable[[Obj, float], list[str]]] = {
    "Pool": _pool_body,
    "Model": _model_body,
    "Policy": _policy_body,
}


def describe(kind: str, obj: Obj, *, now: float) -> str:
    return "\n".join([*_header(obj), *_BODIES[kind](obj, now), *_errors(obj), *_events(obj, now)])
