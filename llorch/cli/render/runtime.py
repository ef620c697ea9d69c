"""Pools and tasks at run time: a pool's health, the capabilities and replica-set tables, a run's summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llorch.cli.render.values import (
    NONE,
    Obj,
    dicts,
    gpu_list,
    human_duration,
    human_size,
    integer,
    number,
    percent,
    sub,
    table,
    text,
    yes,
)


def health(answer: Obj) -> str:
    """`llorchctl health pool/NAME`: a one-line summary, the last error, a replica table."""
    metrics = sub(answer, "metrics")
    header = "  ".join(
        [
            f"Pool: {text(answer.get('pool'))}",
            f"live: {yes(answer.get('live'))}",
            f"ready: {yes(answer.get('ready'))}",
            f"draining: {yes(answer.get('draining'))}",
            f"slots: {integer(metrics.get('slots_busy'))}/{integer(metrics.get('slots_total'))} busy",
            f"queue: {integer(metrics.get('queue_depth'))}",
        ]
    )
    lines = [header]
    if answer.get("blocked_by"):
        lines.append(f"Blocked by: {text(answer['blocked_by'])}: {text(answer.get('message'))}")
    if answer.get("last_error"):
        lines.append(f"Last error: {text(answer['last_error'])}")
    rows = [
        [
            text(r.get("id")),
            text(r.get("phase")),
            gpu_list(r.get("gpus")),
            text(r.get("port")),
            text(r.get("pid")),
            human_duration(r["uptime_s"]) if number(r.get("uptime_s")) is not None else NONE,
            str(integer(r.get("restarts"))),
            f"{integer(r.get('slots_busy'))}/{integer(r.get('slots_total'))}",
            text(r.get("last_error")),
        ]
        for r in dicts(answer.get("replicas"))
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
        limits = sub(entry, "rate_limits")
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


def replicasets_table(sets: Sequence[Obj], *, wide: bool = False) -> str:
    """One row per replica set; wide adds STATE and GPUS, and an indented row per replica under it."""
    headers = ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"]
    if wide:
        headers += ["STATE", "GPUS"]
    rows: list[list[str]] = []
    for entry in sets:
        replicas = dicts(entry.get("replicas"))
        row = [
            text(entry.get("id")),
            text(entry.get("engine")),
            text(entry.get("engine_version")),
            str(len(replicas)),
            f"{integer(entry.get('slots_free'))}/{integer(entry.get('slots_total'))}",
            percent(entry.get("load")),
        ]
        if not wide:
            rows.append(row)
            continue
        rows.append([*row, "", ""])
        for replica in replicas:
            slots, busy = integer(replica.get("slots")), integer(replica.get("busy"))
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


def run_summary(end: Obj, replica: str | None) -> str:
    """`--- 64 tokens, TTFT 12 ms, 850.3 tokens/s (decode 75 ms), finish: length, replica demo-0`."""
    tokens = integer(end.get("tokens_out"))
    parts = [f"{tokens} token{'' if tokens == 1 else 's'}"]
    ttft, decode = number(end.get("ttft_ms")), number(end.get("decode_ms"))
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


def top(sets: Sequence[Obj]) -> str:
    """`llorchctl top`, as `ollama ps` and `kubectl top`: a row per pool, an indented row per
    replica under it."""
    headers = [
        "NAME",
        "STATE",
        "MODEL",
        "READY",
        "MEMORY",
        "SLOTS",
        "QUEUE",
        "TOKENS/S",
        "IDLE",
        "SCALE-DOWN",
    ]
    rows: list[list[str]] = []
    for entry in sets:
        replicas = dicts(entry.get("replicas"))
        ready = sum(1 for r in replicas if r.get("state") == "Ready")
        busy = sum(integer(r.get("busy")) for r in replicas)
        idle = [number(r.get("idle_seconds")) for r in replicas]
        scale_down = number(entry.get("scale_down_in_seconds"))
        rows.append(
            [
                text(entry.get("id")),
                text(entry.get("state")),
                text(entry.get("model")),
                f"{ready}/{integer(entry.get('replicas_desired'))}",
                human_size(sum(integer(r.get("memory_bytes")) for r in replicas) or None),
                f"{busy}/{integer(entry.get('slots_total'))}",
                str(integer(sub(entry, "slo").get("queue_depth"))),
                _rate(sum(number(r.get("tokens_per_second")) or 0.0 for r in replicas)),
                _idle(min((s for s in idle if s is not None), default=None) if replicas else None),
                f"in {human_duration(scale_down)}" if scale_down is not None else NONE,
            ]
        )
        for replica in replicas:
            slots = integer(replica.get("slots"))
            rows.append(
                [
                    "  " + text(replica.get("id")),
                    text(replica.get("state")),
                    gpu_list(replica.get("gpus")) if replica.get("gpus") else "cpu",
                    "",
                    human_size(replica.get("memory_bytes") or None),
                    f"{integer(replica.get('busy'))}/{slots}",
                    "",
                    _rate(number(replica.get("tokens_per_second")) or 0.0),
                    _idle(number(replica.get("idle_seconds"))),
                    "",
                ]
            )
    return "\n".join(table(headers, rows))


def _rate(tokens_per_second: float) -> str:
    return f"{tokens_per_second:.1f}" if tokens_per_second else "0"


def _idle(seconds: float | None) -> str:
    return human_duration(seconds) if seconds is not None else NONE
