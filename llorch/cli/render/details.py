"""`describe`: one object as kubectl describe shows it, spec, status, conditions, replicas, events."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from llorch.cli.render.tables import desired_replicas, download_progress, model_source, selector_text
from llorch.cli.render.values import (
    NONE,
    Obj,
    age,
    conditions_of,
    dicts,
    error_line,
    events_of,
    fields,
    gpu_list,
    human_duration,
    human_size,
    integer,
    mapping_text,
    model_status,
    name_of,
    pool_status,
    section,
    spec_of,
    status_of,
    sub,
    table,
    text,
    timestamp,
    where,
)
from llorch.resources.status import Condition, EventView, PoolStatus, ReplicaStatus

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
    """`yes (deadline in 45s)`, `yes (deadline passed 3s ago)`; the deadline is a moment (see
    `timestamp`), `yes` alone when there is none."""
    at = timestamp(deadline)
    if at is None:
        return "yes"
    if at >= now:
        return f"yes (deadline in {human_duration(at - now)})"
    return f"yes (deadline passed {human_duration(now - at)} ago)"


def _context_text(spec: Obj, status: PoolStatus) -> str:
    line = f"{text(spec.get('context'))} tokens per slot"
    given = [r.context for r in status.replica_statuses if r.context is not None]
    if given and min(given) < integer(spec.get("context")):
        line += f" (the engine gives {min(given)})"
    return line


def _autoscale_lines(status: PoolStatus, now: float) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    if status.desired_replicas is not None:
        desired = f"{status.desired_replicas}" + (" (idle)" if status.idle else "")
        lines.append(
            (
                "Desired Replicas",
                f"{desired}: {status.autoscale_reason}" if status.autoscale_reason else desired,
            )
        )
    if status.last_activity is not None:
        lines.append(("Last Activity", f"{age(status.last_activity, now)} ago"))
    if status.scale_down_at is not None:
        at = status.scale_down_at.timestamp()
        lines.append(("Scales Down", f"in {human_duration(max(0.0, at - now))} if no task comes"))
    return lines


def _pool_body(obj: Obj, now: float) -> list[str]:
    spec, status = spec_of(obj), pool_status(obj)
    endpoint = sub(spec, "endpoint")
    autoscale = sub(spec, "autoscale")
    replicas_text = (
        f"autoscale {text(autoscale.get('min'))}..{text(autoscale.get('max'))}, idle after "
        f"{human_duration(float(autoscale.get('idleSeconds') or 0))}, "
        f"more than {text(autoscale.get('queuePerReplica'))} queued per replica grows it"
        if autoscale
        else text(spec.get("replicas"))
    )
    pairs = [
        ("Model", text(spec.get("model"))),
        ("Engine", text(spec.get("engine"))),
        ("Replicas", replicas_text),
        ("Priority", text(spec.get("priority", 0))),
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
    total, busy = status.slots_total, status.slots_busy or 0
    state = [
        ("Ready", f"{status.ready_replicas}/{desired_replicas(status, spec)}"),
        ("Slots", f"{total - busy} free of {total}"),
    ]
    if status.blocked_by:
        state.append(("Blocked By", status.blocked_by))
    state += _autoscale_lines(status, now)
    if status.memory_per_replica_mib:
        state.append(("Memory per Replica", f"{status.memory_per_replica_mib} MiB"))
    if status.vram_estimate:
        state.append(("VRAM estimate", text(status.vram_estimate)))
    if status.cold_start_seconds is not None:
        last = status.last_cold_start_seconds
        recent = f"{status.cold_start_seconds:.1f}s median of recent starts"
        state.append(("Cold Start", f"{recent}, last {last:.1f}s" if last is not None else recent))
    if status.draining:
        state.append(("Draining", drain_text(status.drain_deadline, now)))
    rollout = status.rollout
    if rollout is not None and rollout.failed_revision:
        failed = f"failed revision {rollout.failed_revision}"
        state.append(("Rollout", f"{failed}: {rollout.message}" if rollout.message else failed))
    # Generations start at 1: 0 is a status no controller has written.
    state.append(("Observed Generation", text(status.observed_generation or None)))
    lines = ["Spec:", *fields(pairs, "  "), "Status:", *fields(state, "  ")]
    lines += _conditions(status.conditions, now)
    replicas = status.replica_statuses
    rows = [
        [
            text(r.id),
            r.phase,
            gpu_list(r.gpus),
            text(r.pid),
            text(r.port),
            str(r.restarts),
            text(r.last_exit),
            text(r.last_error),
        ]
        for r in replicas
    ]
    headers = ["ID", "PHASE", "GPUS", "PID", "PORT", "RESTARTS", "LAST-EXIT", "LAST-ERROR"]
    lines += section("Replicas", table(headers, rows, "  ") if rows else [])
    lines += [
        f"  {text(r.id)} pending: {text(r.reason)}" for r in replicas if r.phase == "Pending" and r.reason
    ]
    for replica in replicas:
        lines += _log_tail(replica)
    return lines


def _crashing(replica: ReplicaStatus) -> bool:
    return replica.phase == "BackOff" or (replica.phase != "Ready" and bool(replica.last_error))


def _log_tail(replica: ReplicaStatus) -> list[str]:
    tail = replica.log_tail[-LOG_TAIL_LINES:]
    if not _crashing(replica) or not tail:
        return []
    where = f" ({replica.log_path})" if replica.log_path else ""
    return [f"Last log lines of {text(replica.id)}{where}:", *(f"  {line}" for line in tail)]


def _model_body(obj: Obj, now: float) -> list[str]:
    spec, status = spec_of(obj), model_status(obj)
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
    digest = text(status.digest)
    if status.digest:
        digest += " (verified)" if status.digest_verified is True else " (not verified)"
    trust = text(status.trust)
    if status.signer:
        trust += f" by {status.signer}"
    if status.trust_warning:
        trust += f" ({status.trust_warning})"
    state = [("Lifecycle", text(status.lifecycle))]
    progress = download_progress(status)
    if progress is not None:
        state.append(("Download", progress))
    state += [
        ("Resolved Path", text(status.resolved_path)),
        ("Size", human_size(status.size_bytes)),
        ("Digest", digest),
        ("Trust", trust),
    ]
    if status.sbom is not None:
        licenses = ", ".join(status.sbom.licenses) or NONE
        state.append(("SBOM", f"{status.sbom.format}, {status.sbom.components} components"))
        state.append(("Licenses", licenses))
    elif status.sbom_error:
        state.append(("SBOM", f"unreadable: {status.sbom_error}"))
    verification = status.last_verification
    if verification is not None:
        state.append(
            (
                "Last Verification",
                f"{verification.result} ({verification.reason}) {age(verification.at, now)} ago",
            )
        )
    state.append(("Observed Generation", text(status.observed_generation or None)))
    return [
        "Spec:",
        *fields(pairs, "  "),
        "Status:",
        *fields(state, "  "),
        *_conditions(status.conditions, now),
    ]


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
    return lines + (_conditions(conditions_of(status["conditions"]), now) if "conditions" in status else [])


def host_rule_text(rule: Obj) -> str:
    """`github: GET api.github.com https:443`: what a rule covers, unset parts left out."""
    methods = ",".join(map(str, rule.get("methods") or []))
    schemes = ",".join(map(str, rule.get("schemes") or []))
    ports = ",".join(map(str, rule.get("ports") or []))
    where = f"{schemes}:{ports}" if schemes and ports else schemes or (f":{ports}" if ports else "")
    words = [methods, text(rule.get("host")), where]
    body = " ".join(word for word in words if word)
    return f"{rule['name']}: {body}" if rule.get("name") else body


def _conditions(conditions: list[Condition], now: float) -> list[str]:
    rows = [
        [text(c.type), c.status, text(c.reason), text(c.message), age(c.last_transition_time, now)]
        for c in conditions
    ]
    return section(
        "Conditions", table(["TYPE", "STATUS", "REASON", "MESSAGE", "AGE"], rows, "  ") if rows else []
    )


def _event_age(event: EventView, now: float) -> str:
    last = age(event.last_timestamp, now)
    return f"{last} (x{event.count} over {age(event.first_timestamp, now)})" if event.count > 1 else last


def _events(obj: Obj, now: float) -> list[str]:
    rows = [[e.type, text(e.reason), _event_age(e, now), text(e.message)] for e in events_of(obj)]
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
