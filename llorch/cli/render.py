"""How llorchctl shows API objects: kubectl-style tables, describe text, yaml/json, ages.

Everything here is a pure function of the API's JSON and a `now` (unix seconds), so the output is
testable without a daemon. Objects are read defensively: a field the daemon did not fill (a pool
never reconciled has `status: {}`) shows as `<none>` or a zero, never as a crash.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import yaml

Obj = dict[str, Any]

NONE = "<none>"
UNKNOWN = "<unknown>"
LOG_TAIL_LINES = 20
_GAP = "   "  # kubectl's column padding


# -- small values -----------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """kubectl's short form: one unit, truncated (45s, 3m, 2h, 5d, 1y)."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m"
    hours = total // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def timestamp(value: Any) -> float | None:
    """Unix seconds from the API; ISO 8601 text is accepted too, in case a field is sent that way."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def age(value: Any, now: float) -> str:
    at = timestamp(value)
    return UNKNOWN if at is None else human_duration(now - at)


def human_size(size: Any) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool):
        return NONE
    if size < 1024:
        return f"{int(size)}B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f}{unit}"


def text(value: Any) -> str:
    """One table cell or describe value: never empty, never more than one line."""
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split("\n"))


def where(file: Any, line: Any) -> str:
    place = str(file or "<unknown file>")
    return f"{place}:{line}" if isinstance(line, int) else place


def located(file: Any, line: Any, field: Any, message: Any) -> str:
    """`file:line: field: message`, the shape compilers use, leaving out what is unknown."""
    place = where(file, line)
    return f"{place}: {field}: {message}" if field else f"{place}: {message}"


def resource_name(kind: str, name: str) -> str:
    """`pool/demo`, as kubectl's `-o name` and apply lines write it."""
    return f"{kind.lower()}/{name}"


def key_name(key: str) -> str:
    kind, _, name = key.partition("/")
    return resource_name(kind, name)


# -- tables -----------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    cells = [list(headers), *([" ".join(cell.splitlines()) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        indent + _GAP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _name(obj: Obj) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""


def _dicts(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _condition(status: Obj, kind: str) -> Obj | None:
    return next((c for c in _dicts(status.get("conditions")) if c.get("type") == kind), None)


def _is_true(condition: Obj | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def pool_status(obj: Obj) -> str:
    """The STATUS column: the most urgent thing first, as kubectl shows CrashLoopBackOff over Running."""
    status = _status(obj)
    if obj.get("errors"):
        return "ManifestError"
    if status.get("draining") is True:
        # Asked for by a person, so it outranks whatever the stopping replicas look like.
        return "Drained" if _int(status.get("readyReplicas")) == 0 else "Draining"
    if status.get("blockedBy"):
        return str(status["blockedBy"])
    degraded = _condition(status, "Degraded")
    if _is_true(degraded):
        return str((degraded or {}).get("reason") or "Degraded")
    if _is_true(_condition(status, "Ready")):
        return "Ready"
    return "Progressing"


def pool_message(obj: Obj) -> str:
    errors = _dicts(obj.get("errors"))
    if errors:
        first = errors[0]
        return located(first.get("file"), first.get("line"), first.get("field"), first.get("message"))
    status = _status(obj)
    for kind, wanted in (("Degraded", "True"), ("Ready", "False"), ("Progressing", "True")):
        condition = _condition(status, kind)
        if condition is not None and condition.get("status") == wanted and condition.get("message"):
            return str(condition["message"])
    return ""


def pool_age(obj: Obj, now: float) -> str:
    status = _status(obj)
    moments = [c.get("lastTransitionTime") for c in _dicts(status.get("conditions"))]
    moments += [r.get("startedAt") for r in _dicts(status.get("replicaStatuses"))]
    known = [t for t in map(timestamp, moments) if t is not None]
    return human_duration(now - min(known)) if known else UNKNOWN


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _pool_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status = _spec(obj), _status(obj)
    desired = status.get("replicas", spec.get("replicas"))
    total, busy = _int(status.get("slotsTotal")), _int(status.get("slotsBusy"))
    row = [
        _name(obj),
        text(spec.get("model")),
        text(spec.get("engine")),
        f"{_int(status.get('readyReplicas'))}/{_int(desired)}",
        f"{total - busy}/{total}",
        pool_status(obj),
        pool_age(obj, now),
    ]
    if wide:
        replicas = _dicts(status.get("replicaStatuses"))
        ports = [str(r["port"]) for r in replicas if r.get("port") is not None]
        row += [
            ",".join(ports) or NONE,
            str(sum(_int(r.get("restarts")) for r in replicas)),
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


def _ready(status: Obj) -> str:
    ready = _condition(status, "Ready")
    return str(ready.get("status", "Unknown")) if ready is not None else "Unknown"


def _model_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec, status = _spec(obj), _status(obj)
    return [
        _name(obj),
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


def _sub(spec: Obj, name: str) -> Obj:
    value = spec.get(name)
    return value if isinstance(value, dict) else {}


def _policy_row(obj: Obj, wide: bool, now: float) -> list[str]:
    spec = _spec(obj)
    admission, sessions = _sub(spec, "admission"), _sub(spec, "sessions")
    ttl = sessions.get("ttlSeconds")
    ttl_text = human_duration(ttl) if isinstance(ttl, int | float) else "?"
    return [
        _name(obj),
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


# -- whole objects ----------------------------------------------------------------------------------


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")


def manifest_warning(errors: Sequence[Obj]) -> list[str]:
    """Lines for stderr after a table; none when every manifest is fine."""
    if not errors:
        return []
    lines = ["warning: manifest errors (last good versions keep running):"]
    lines += [
        "  " + located(e.get("file"), e.get("line"), e.get("field"), e.get("message")) for e in _dicts(errors)
    ]
    return lines


# -- describe ---------------------------------------------------------------------------------------


def _fields(pairs: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = max(len(label) for label, _ in pairs) + 3
    return [f"{indent}{(label + ':').ljust(width)}{value}" for label, value in pairs]


def _mapping(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(value.items()))


def _header(obj: Obj) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    source = obj.get("source") if isinstance(obj.get("source"), dict) else {}
    place = where(source.get("file"), source.get("line")) if source else NONE
    return _fields(
        [
            ("Name", _name(obj)),
            ("Kind", text(obj.get("kind"))),
            ("Labels", _mapping((meta or {}).get("labels"))),
            ("Annotations", _mapping((meta or {}).get("annotations"))),
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


def short_gpu_name(name: str) -> str:
    """`NVIDIA GeForce RTX 3090` → `RTX 3090`: the vendor words every card of a box shares."""
    words = name.split()
    while len(words) > 1 and words[0] in ("NVIDIA", "GeForce"):
        words.pop(0)
    return " ".join(words)


def gpu_list(gpus: Any) -> str:
    """A replica's GPUs, `0:RTX 3090,1:RTX 3090` (bare indices are fine too); `cpu` when it has none."""
    parts: list[str] = []
    for gpu in gpus if isinstance(gpus, list) else []:
        if isinstance(gpu, dict):
            index, name = text(gpu.get("index")), gpu.get("name")
            parts.append(f"{index}:{short_gpu_name(name)}" if isinstance(name, str) and name else index)
        else:
            parts.append(text(gpu))
    return ",".join(parts) or "cpu"


def drain_text(deadline: Any, now: float) -> str:
    """`yes (deadline in 45s)`, `yes (deadline passed 3s ago)`; the deadline is unix seconds."""
    at = timestamp(deadline)
    if at is None:
        return "yes"
    if at >= now:
        return f"yes (deadline in {human_duration(at - now)})"
    return f"yes (deadline passed {human_duration(now - at)} ago)"


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"{title}:", *lines] if lines else [f"{title}:  {NONE}"]


def _context_text(spec: Obj, status: Obj) -> str:
    line = f"{text(spec.get('context'))} tokens per slot"
    given = [c for r in status.get("replicaStatuses") or [] if isinstance(c := r.get("context"), int)]
    if given and min(given) < _int(spec.get("context")):
        line += f" (the engine gives {min(given)})"
    return line


def _pool_body(obj: Obj, now: float) -> list[str]:
    spec, status = _spec(obj), _status(obj)
    endpoint = _sub(spec, "endpoint")
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
    total, busy = _int(status.get("slotsTotal")), _int(status.get("slotsBusy"))
    state = [
        (
            "Ready",
            f"{_int(status.get('readyReplicas'))}/{_int(status.get('replicas', spec.get('replicas')))}",
        ),
        ("Slots", f"{total - busy} free of {total}"),
    ]
    if status.get("blockedBy"):
        state.append(("Blocked By", str(status["blockedBy"])))
    if status.get("vramEstimate"):
        state.append(("VRAM estimate", text(status["vramEstimate"])))
    if status.get("draining") is True:
        state.append(("Draining", drain_text(status.get("drainDeadline"), now)))
    rollout = _sub(status, "rollout")
    if rollout.get("failedRevision"):
        failed = f"failed revision {rollout['failedRevision']}"
        state.append(("Rollout", f"{failed}: {rollout['message']}" if rollout.get("message") else failed))
    state.append(("Observed Generation", text(status.get("observedGeneration"))))
    lines = ["Spec:", *_fields(pairs, "  "), "Status:", *_fields(state, "  ")]
    lines += _conditions(status, now)
    replicas = _dicts(status.get("replicaStatuses"))
    rows = [
        [
            text(r.get("id")),
            text(r.get("phase")),
            gpu_list(r.get("gpus")),
            text(r.get("pid")),
            text(r.get("port")),
            str(_int(r.get("restarts"))),
            text(r.get("lastExit")),
            text(r.get("lastError")),
        ]
        for r in replicas
    ]
    headers = ["ID", "PHASE", "GPUS", "PID", "PORT", "RESTARTS", "LAST-EXIT", "LAST-ERROR"]
    lines += _section("Replicas", table(headers, rows, "  ") if rows else [])
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
    spec, status = _spec(obj), _status(obj)
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
    return ["Spec:", *_fields(pairs, "  "), "Status:", *_fields(state, "  "), *_conditions(status, now)]


def _policy_body(obj: Obj, now: float) -> list[str]:
    spec, status = _spec(obj), _status(obj)
    admission, sessions = _sub(spec, "admission"), _sub(spec, "sessions")
    tools = _sub(spec, "httpTools")
    ttl = sessions.get("ttlSeconds")
    pairs = [
        ("Selector", selector_text(spec)),
        ("Queue Capacity", text(admission.get("queueCapacity"))),
        ("Overflow", text(admission.get("overflow"))),
        ("Priorities", ",".join(map(str, admission.get("priorities") or [])) or NONE),
        ("Budgets", _mapping({k: v for k, v in _sub(spec, "budgets").items() if v is not None})),
        ("Session TTL", human_duration(ttl) if isinstance(ttl, int | float) else NONE),
        ("Session Max Turns", text(sessions.get("maxTurns"))),
        ("Determinism", text(_sub(spec, "determinism").get("default"))),
        ("HTTP Tools Allow", ",".join(map(str, tools.get("allow") or [])) or NONE),
        ("HTTP Tools Redact", ",".join(map(str, tools.get("redact") or [])) or NONE),
    ]
    state = [(key, text(value)) for key, value in status.items() if key != "conditions"]
    lines = ["Spec:", *_fields(pairs, "  "), *_section("Status", _fields(state, "  ") if state else [])]
    return lines + (_conditions(status, now) if "conditions" in status else [])


def _conditions(status: Obj, now: float) -> list[str]:
    rows = [
        [
            text(c.get("type")),
            text(c.get("status")),
            text(c.get("reason")),
            text(c.get("message")),
            age(c.get("lastTransitionTime"), now),
        ]
        for c in _dicts(status.get("conditions"))
    ]
    return _section(
        "Conditions", table(["TYPE", "STATUS", "REASON", "MESSAGE", "AGE"], rows, "  ") if rows else []
    )


def _event_age(event: Obj, now: float) -> str:
    count = _int(event.get("count"))
    if count > 1:
        return (
            f"{age(event.get('lastTimestamp'), now)} (x{count} over {age(event.get('firstTimestamp'), now)})"
        )
    return age(event.get("lastTimestamp") or event.get("firstTimestamp"), now)


def _events(obj: Obj, now: float) -> list[str]:
    rows = [
        [text(e.get("type")), text(e.get("reason")), _event_age(e, now), text(e.get("message"))]
        for e in _dicts(obj.get("events"))
    ]
    return _section("Events", table(["TYPE", "REASON", "AGE", "MESSAGE"], rows, "  ") if rows else [])


def _errors(obj: Obj) -> list[str]:
    errors = _dicts(obj.get("errors"))
    if not errors:
        return []
    lines = ["Manifest Errors:  (the last good version keeps running)"]
    return lines + [
        "  " + located(e.get("file"), e.get("line"), e.get("field"), e.get("message")) for e in errors
    ]


_BODIES: dict[str, Callable[[Obj, float], list[str]]] = {
    "Pool": _pool_body,
    "Model": _model_body,
    "Policy": _policy_body,
}


def describe(kind: str, obj: Obj, *, now: float) -> str:
    return "\n".join([*_header(obj), *_BODIES[kind](obj, now), *_errors(obj), *_events(obj, now)])


# -- pools at run time: health, capabilities, replica sets ------------------------------------------


def millis_text(millis: int) -> str:
    """A deadline as the drain line shows it: `60s`, `0.5s`."""
    return f"{millis / 1000:g}s"


def _yes(value: Any) -> str:
    return "yes" if value is True else "no"


def health(answer: Obj) -> str:
    """`llorchctl health pool/NAME`: a one-line summary, the last error, a replica table."""
    metrics = _sub(answer, "metrics")
    header = "  ".join(
        [
            f"Pool: {text(answer.get('pool'))}",
            f"live: {_yes(answer.get('live'))}",
            f"ready: {_yes(answer.get('ready'))}",
            f"draining: {_yes(answer.get('draining'))}",
            f"slots: {_int(metrics.get('slots_busy'))}/{_int(metrics.get('slots_total'))} busy",
            f"queue: {_int(metrics.get('queue_depth'))}",
        ]
    )
    lines = [header]
    if answer.get("last_error"):
        lines.append(f"Last error: {text(answer['last_error'])}")
    rows = [
        [
            text(r.get("id")),
            text(r.get("phase")),
            gpu_list(r.get("gpus")),
            text(r.get("port")),
            text(r.get("pid")),
            human_duration(r["uptime_s"]) if _ms(r.get("uptime_s")) is not None else NONE,
            str(_int(r.get("restarts"))),
            f"{_int(r.get('slots_busy'))}/{_int(r.get('slots_total'))}",
            text(r.get("last_error")),
        ]
        for r in _dicts(answer.get("replicas"))
    ]
    headers = ["ID", "PHASE", "GPUS", "PORT", "PID", "UPTIME", "RESTARTS", "SLOTS", "LAST-ERROR"]
    lines += table(headers, rows) if rows else [f"Replicas:  {NONE}"]
    return "\n".join(lines)


def true_features(features: Any) -> str:
    """The features a pool has, as a comma list; valued ones (determinism) are left to -o yaml."""
    if not isinstance(features, dict):
        return NONE
    return ",".join(name for name, value in features.items() if value is True) or NONE


def capabilities_table(pools: Sequence[Obj]) -> str:
    rows = []
    for entry in pools:
        limits = _sub(entry, "rate_limits")
        rows.append(
            [
                text(entry.get("pool")),
                text(entry.get("engine")),
                text(entry.get("engine_version")),
                text(entry.get("model")),
                text(entry.get("ctx_max")),
                text(entry.get("max_tokens_out")),
                text(entry.get("slots_total")),
                text(entry.get("replicas_ready")),
                f"{text(limits.get('queue_capacity'))}/{text(limits.get('overflow'))}",
                true_features(entry.get("features")),
            ]
        )
    headers = ["POOL", "ENGINE", "VERSION", "MODEL", "CTX", "MAX-OUT", "SLOTS", "READY", "QUEUE", "FEATURES"]
    return "\n".join(table(headers, rows))


def percent(ratio: Any) -> str:
    value = _ms(ratio)
    return NONE if value is None else f"{value * 100:.0f}%"


def replicasets_table(sets: Sequence[Obj], *, wide: bool = False) -> str:
    """One row per replica set; wide adds STATE and GPUS, and an indented row per replica under it."""
    headers = ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"]
    if wide:
        headers += ["STATE", "GPUS"]
    rows: list[list[str]] = []
    for entry in sets:
        replicas = _dicts(entry.get("replicas"))
        row = [
            text(entry.get("id")),
            text(entry.get("engine")),
            text(entry.get("engine_version")),
            str(len(replicas)),
            f"{_int(entry.get('slots_free'))}/{_int(entry.get('slots_total'))}",
            percent(entry.get("load")),
        ]
        if not wide:
            rows.append(row)
            continue
        rows.append([*row, "", ""])
        for replica in replicas:
            slots, busy = _int(replica.get("slots")), _int(replica.get("busy"))
            rows.append(
                [
                    "  " + text(replica.get("id")),
                    "",
                    "",
                    "",
                    f"{slots - busy}/{slots}",
                    percent(busy / slots) if slots else NONE,
                    text(replica.get("state")),
                    gpu_list(replica.get("gpus")),
                ]
            )
    return "\n".join(table(headers, rows))


# -- artifacts --------------------------------------------------------------------------------------


def artifacts_table(items: Sequence[Obj], *, wide: bool = False, now: float) -> str:
    """IDs cut to 12 characters, as docker shows image ids; wide shows them whole (`artifact show`
    needs the whole id) and adds PARENT and METADATA."""
    headers = ["ID", "KIND", "SIZE", "TAGS", "AGE"]
    if wide:
        headers += ["PARENT", "METADATA"]
    rows = []
    for item in items:
        artifact_id = text(item.get("id"))
        created_ms = _ms(item.get("created_ms"))
        row = [
            artifact_id if wide else artifact_id[:12],
            text(item.get("kind")),
            human_size(item.get("size_bytes")),
            ",".join(map(str, item.get("tags") or [])) or NONE,
            age(None if created_ms is None else created_ms / 1000, now),
        ]
        if wide:
            row += [text(item.get("parent")), _mapping(item.get("metadata"))]
        rows.append(row)
    return "\n".join(table(headers, rows))


# -- run --------------------------------------------------------------------------------------------


def _ms(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run_summary(end: Obj, replica: str | None) -> str:
    """`--- 64 tokens, TTFT 12 ms, 850.3 tokens/s (decode 75 ms), finish: length, replica demo-0`."""
    tokens = _int(end.get("tokens_out"))
    parts = [f"{tokens} token{'' if tokens == 1 else 's'}"]
    ttft, decode = _ms(end.get("ttft_ms")), _ms(end.get("decode_ms"))
    if ttft is not None:
        parts.append(f"TTFT {ttft:.0f} ms")
    if decode:
        parts.append(f"{tokens / decode * 1000:.1f} tokens/s (decode {decode:.0f} ms)")
    elif decode is not None:
        # Nothing decoded (or a clock too coarse to see it): a rate would be a division by zero.
        parts.append("decode 0 ms")
    parts.append(f"finish: {end.get('finish_reason') or 'unknown'}")
    if replica:
        parts.append(f"replica {replica}")
    return "--- " + ", ".join(parts)
